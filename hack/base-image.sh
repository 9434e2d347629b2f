#!/usr/bin/env bash
# Build a local Python base image from Debian packages, for machines that cannot pull one.
#
# The Dockerfile's default base is a public Python slim image. Where no registry is reachable,
# this script debootstraps Debian bookworm (its python3 is 3.11, as the slim image's) with
# venv (and so pip), and imports the folder as an image:
#
#   hack/base-image.sh                  builds mcpgw-base:bookworm unless it exists
#   MCPGW_BASE_IMAGE=name:tag hack/base-image.sh
#   MCPGW_BASE_REBUILD=1 hack/base-image.sh   rebuild even when the image exists
#
# Then: docker build --build-arg BASE_IMAGE=mcpgw-base:bookworm .
#
# The Debian mirror is the one this machine's apt already uses (from `apt-get indextargets`),
# so nothing here names a host. The machine's CA bundle is copied into the image: when the
# machine reaches package indexes through a TLS-inspecting egress proxy, pip inside the build
# needs to trust what the machine trusts. Public images never get this; it is local only.
set -euo pipefail

IMAGE="${MCPGW_BASE_IMAGE:-mcpgw-base:bookworm}"
SUITE=bookworm
# python3-venv brings ensurepip and its bundled pip wheel: the builder stage needs no more.
PACKAGES=python3,python3-venv,ca-certificates
CACHE_ROOT="${MCPGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-operator}"

say() { printf '[base-image] %s\n' "$*" >&2; }
die() { printf '[base-image] error: %s\n' "$*" >&2; exit 2; }

command -v docker >/dev/null || die "docker is not installed; run hack/docker-engine.sh (Debian: apt-get install docker.io)"
timeout 10 docker info >/dev/null 2>&1 || die "no Docker engine answers; run hack/docker-engine.sh"

if [[ -z ${MCPGW_BASE_REBUILD:-} ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE: cached ($(docker image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec))"
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die "debootstrap needs root (run as root or with sudo)"
if ! command -v debootstrap >/dev/null; then
  command -v apt-get >/dev/null || die "debootstrap is not installed and apt-get is absent; install debootstrap"
  say "installing Debian's debootstrap"
  apt-get update -qq >/dev/null || die "apt-get update failed; check the Debian package sources"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
    || die "apt-get install debootstrap failed; see the output above"
fi

# The mirror that serves this machine's bookworm index: the part of an index URI before
# /dists/<suite>/. The whole listing is read first (no early-closing pipe under pipefail).
# Single quotes on purpose: $(URI) is apt's own placeholder, not a shell expansion.
# shellcheck disable=SC2016
targets=$(apt-get indextargets --format '$(URI)' 2>/dev/null || true)
mirror=$(awk -v cut="/dists/$SUITE/" \
  'index($0, cut) && m == "" { m = substr($0, 1, index($0, cut) - 1) } END { print m }' \
  <<<"$targets")
[[ -n $mirror ]] || die "no $SUITE mirror in apt's sources (apt-get indextargets); add a $SUITE source and run apt-get update"

ROOTFS="$CACHE_ROOT/base-image/rootfs-$SUITE"
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
trap 'rm -rf "$ROOTFS"' EXIT
say "debootstrap --variant=minbase $SUITE with $PACKAGES (about a minute)"
start=$SECONDS
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$mirror" \
  >"$CACHE_ROOT/base-image/debootstrap.log" 2>&1; then
  tail -n 20 "$CACHE_ROOT/base-image/debootstrap.log" >&2
  die "debootstrap failed (full log: $CACHE_ROOT/base-image/debootstrap.log)"
fi
say "debootstrap done in $((SECONDS - start)) s; trimming"

# What an image never needs: package lists, caches, docs, man pages, locales beyond C.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
  "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/*
if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then
  cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
  say "copied this machine's CA bundle into the image (local base only)"
fi

say "importing the folder as $IMAGE"
tar --numeric-owner -C "$ROOTFS" -c . \
  | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "Debian $SUITE minbase with $PACKAGES (hack/base-image.sh)" \
    - "$IMAGE" >/dev/null
say "$IMAGE ready in $((SECONDS - start)) s ($(docker image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec))"
