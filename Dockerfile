# One image for both components of the MCPGateway OAuth operator:
#   docker run <image> operator [--liveness URL]   the Kopf operator
#   docker run <image> callback                    the OAuth callback service
#
# Base image: any Python 3.11+ image with `python3 -m venv` (the public slim image by default).
# Where nothing can be pulled, hack/base-image.sh builds one from Debian packages:
#   docker build --build-arg BASE_IMAGE=mcpgw-base:bookworm .
#
# Runtime contract (what the Helm chart relies on):
#   - runs as UID/GID 65532 (non-root, numeric so runAsNonRoot can verify it);
#   - writes nothing to the image: byte code is compiled at build time and
#     PYTHONDONTWRITEBYTECODE stops any later writes, so readOnlyRootFilesystem works.
#     HOME is /tmp. In a cluster (ServiceAccount credentials) neither component writes
#     anything. Out of cluster, a KUBECONFIG with inline certificate data is written to
#     private temp files (Python's ssl loads certificates from paths), so mount a small
#     tmpfs/emptyDir at /tmp there, e.g. `docker run --read-only --tmpfs /tmp ...`.
ARG BASE_IMAGE=python:3.11-slim

# ---- builder: a venv holding the project wheel and its dependencies ----
FROM ${BASE_IMAGE} AS builder
# pip settings for the build only (this stage is not shipped). Pass what your machine's pip
# needs to reach a package index, e.g. --build-arg PIP_INDEX_URL=... or PIP_CERT=<a path in
# the base image>; never a credential (build args are kept in the builder's history).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_CERT
ARG PIP_DEFAULT_TIMEOUT=60
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/mcpgw

# Dependencies first, from pyproject.toml alone, so a source change reuses this layer.
WORKDIR /src
COPY pyproject.toml README.md ./
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /tmp/requirements.txt \
 && /opt/mcpgw/bin/python -m pip install -r /tmp/requirements.txt "setuptools>=68" wheel

# The project itself, as a wheel (build isolation off: setuptools is already in the venv).
COPY mcpgw_core ./mcpgw_core
COPY operator ./operator
COPY callback_service ./callback_service
RUN /opt/mcpgw/bin/python -m pip wheel --no-deps --no-build-isolation -w /tmp/wheels . \
 && /opt/mcpgw/bin/python -m pip install --no-deps /tmp/wheels/*.whl \
 && /opt/mcpgw/bin/python -m pip uninstall -y -q setuptools wheel pip \
 && /opt/mcpgw/bin/python -m compileall -q /opt/mcpgw/lib

# ---- runtime: the base image, the venv, the entrypoint; nothing else ----
FROM ${BASE_IMAGE}
ENV PATH=/opt/mcpgw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

# A named account for UID 65532: Kopf derives its peering identity from the user name
# (getpass.getuser), which fails for a UID without a passwd entry. USER in the environment
# covers a cluster that overrides runAsUser with another UID.
RUN groupadd --gid 65532 mcpgw \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --no-log-init mcpgw
ENV USER=mcpgw LOGNAME=mcpgw

COPY --from=builder /opt/mcpgw /opt/mcpgw
COPY hack/image-entrypoint.sh /usr/local/bin/mcpgw-entrypoint

USER 65532:65532
WORKDIR /tmp
# The operator's liveness endpoint (kopf --liveness); the callback service's port is a setting.
EXPOSE 8080
# Run through sh: the engine's classic builder has no COPY --chmod, and this way the
# script's mode bits in the checkout do not matter.
ENTRYPOINT ["/bin/sh", "/usr/local/bin/mcpgw-entrypoint"]
CMD ["--help"]

# Labels last: CREATED and REVISION change every build and must not invalidate the layers.
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="mcpgw-operator" \
      org.opencontainers.image.description="Kubernetes operator and callback service automating OAuth 2.0 for MCP gateways" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
