#!/bin/sh
# Entrypoint of the mcpgw image: the first argument picks the component to run.
#
#   <image> operator [mcpgw-operator options]   the Kopf operator (`operator --help` lists them)
#   <image> callback                            the callback service (MCPGW_CALLBACK_* settings)
#
# POSIX sh on purpose: both the public slim base and the Debian minbase image have /bin/sh,
# and `exec` leaves the component as PID 1's only child process, receiving SIGTERM directly.
set -eu

PY=/opt/mcpgw/bin/python
EX_USAGE=64

usage() {
  cat <<'EOF'
usage: <image> operator [--liveness URL] [--verbose] [--help]
       <image> callback [--help]

  operator   run the MCPGateway operator (mcpgw-operator); settings from MCPGW_* variables
  callback   run the OAuth callback service (mcpgw-callback); settings from MCPGW_CALLBACK_*
EOF
}

# The callback service takes its whole configuration from the environment and has no options
# of its own, so its help is the list of settings, read from the settings model itself.
callback_help() {
  echo "usage: <image> callback"
  echo
  echo "Runs the OAuth callback service. Settings (environment variables):"
  "$PY" -c '
from callback_service.settings import CallbackSettings

for name, field in CallbackSettings.model_fields.items():
    about = field.description or ""
    print(f"  MCPGW_CALLBACK_{name.upper():<24} {about}".rstrip())
'
}

component="${1:-}"
[ "$#" -gt 0 ] && shift
case "$component" in
  operator)
    exec /opt/mcpgw/bin/mcpgw-operator "$@"
    ;;
  callback)
    case "${1:-}" in
      -h | --help) callback_help; exit 0 ;;
      "") exec /opt/mcpgw/bin/mcpgw-callback ;;
      *)
        echo "mcpgw: the callback service takes no arguments (got '$1'); configure it with MCPGW_CALLBACK_* variables" >&2
        exit "$EX_USAGE"
        ;;
    esac
    ;;
  -h | --help | help)
    usage
    ;;
  "")
    echo "mcpgw: no component given" >&2
    usage >&2
    exit "$EX_USAGE"
    ;;
  *)
    echo "mcpgw: unknown component '$component' (expected 'operator' or 'callback')" >&2
    usage >&2
    exit "$EX_USAGE"
    ;;
esac
