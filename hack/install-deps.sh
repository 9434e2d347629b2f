#!/usr/bin/env bash
# Install what the tests, `make dev-up` and `make demo` need; quick when everything is present.
#   - Debian packages: redis-server (and nodejs/npm, golang-go when absent)
#   - the Python virtualenv .venv with the project and its test extras
#   - the oidc-provider peer's npm packages (from its lock file)
#   - the control-plane binaries (hack/control-plane-assets.sh, cached outside the repo)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[deps] %s\n' "$*" >&2; }
die() { printf '[deps] error: %s\n' "$*" >&2; exit 1; }

apt_install() {
  if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
    die "missing $*; install them with your package manager (Debian: apt-get install $*)"
  fi
  local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  say "installing Debian packages: $*"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then apt_install "${missing[@]}"; fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11 or newer is needed (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"
if [[ ! -x .venv/bin/python ]]; then
  say "creating the virtualenv .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  say "installing the project and its test tools into .venv"
  .venv/bin/python -m pip install -q -e '.[test]'
  touch "$stamp"
fi

peer=tests/peers/oidc
if [[ ! -f $peer/node_modules/.package-lock.json || $peer/package-lock.json -nt $peer/node_modules/.package-lock.json ]]; then
  say "installing the oidc-provider peer's npm packages"
  (cd "$peer" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

bash hack/control-plane-assets.sh >/dev/null
say "all dependencies present"
