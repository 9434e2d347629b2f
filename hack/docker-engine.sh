#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`, starting one when none does.
#
# On these machines nothing runs dockerd for us: when no engine answers, install Debian's
# docker.io (if dockerd is absent) and start `dockerd --iptables=false --bridge=none` in the
# background. Containers then run with `--network host` or `--network none` only, which is all
# the image test needs. The daemon's pid file and log live under $MCPGW_CACHE/docker so a
# later run (or `hack/docker-engine.sh stop`) finds them.
#
#   hack/docker-engine.sh          ensure an engine runs (prints what it did)
#   hack/docker-engine.sh stop     stop the engine this script started, by its pid file
#
# Exit codes: 0 engine ready; 2 no engine and none can be installed or started (the last
# line of stderr says why, for a test's skip reason).
set -euo pipefail

CACHE_ROOT="${MCPGW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpgw-operator}"
STATE="$CACHE_ROOT/docker"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
# A daemon of our own keeps its data beside its pid file, not in /var/lib/docker, so it never
# fights with an engine installed and managed by the machine's owner.
DATA_ROOT="${MCPGW_DOCKER_DATA_ROOT:-$STATE/data}"
EXEC_ROOT="$STATE/exec"
WAIT_SECONDS="${MCPGW_DOCKER_WAIT_SECONDS:-60}"

say() { printf '[docker] %s\n' "$*" >&2; }
die() { printf '[docker] error: %s\n' "$*" >&2; exit 2; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

ensure_client_and_daemon() {
  if command -v dockerd >/dev/null && command -v docker >/dev/null; then return; fi
  if [[ $(id -u) -ne 0 ]]; then
    die "dockerd is not installed and this is not root; install Docker (Debian: apt-get install docker.io)"
  fi
  command -v apt-get >/dev/null \
    || die "dockerd is not installed and apt-get is absent; install a Docker engine by hand"
  say "dockerd not found: installing Debian's docker.io"
  apt-get update -qq >/dev/null || die "apt-get update failed; check the Debian package sources"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null \
    || die "apt-get install docker.io failed; see the output above"
  command -v dockerd >/dev/null || die "docker.io installed but dockerd is still not on PATH"
}

start_daemon() {
  [[ $(id -u) -eq 0 ]] || die "no Docker engine answers and starting dockerd needs root"
  mkdir -p "$STATE" "$DATA_ROOT" "$EXEC_ROOT"
  if [[ -s $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "dockerd (pid $(cat "$PIDFILE")) is running but not answering yet; waiting"
  else
    rm -f "$PIDFILE"
    say "starting dockerd --iptables=false --bridge=none (log: $LOG)"
    # setsid: the daemon outlives this script and the test session that called it, so a
    # warm run reuses it and its layer cache.
    setsid dockerd --iptables=false --ip6tables=false --bridge=none \
      --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
      >>"$LOG" 2>&1 </dev/null &
  fi
  local deadline=$((SECONDS + WAIT_SECONDS))
  until engine_answers; do
    if ((SECONDS >= deadline)); then
      die "dockerd did not answer within ${WAIT_SECONDS} s; last log lines: $(tail -n 3 "$LOG" 2>/dev/null | tr '\n' ' ')"
    fi
    if [[ -s $PIDFILE ]] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      die "dockerd exited at start; last log lines: $(tail -n 3 "$LOG" 2>/dev/null | tr '\n' ' ')"
    fi
    sleep 1
  done
  say "dockerd ready (pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
}

stop_daemon() {
  if [[ ! -s $PIDFILE ]]; then say "no dockerd started by this script"; return; fi
  local pid; pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping dockerd (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
  rm -f "$PIDFILE"
}

case "${1:-ensure}" in
  stop) stop_daemon ;;
  ensure)
    if command -v docker >/dev/null && engine_answers; then
      say "engine already answering: $(docker version --format 'server {{.Server.Version}}' 2>/dev/null)"
      exit 0
    fi
    ensure_client_and_daemon
    start_daemon
    ;;
  *) printf 'usage: hack/docker-engine.sh [ensure|stop]\n' >&2; exit 64 ;;
esac
