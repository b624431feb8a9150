#!/usr/bin/env bash
# Runs `orbis server` in the background: start | stop | status. Pid and log in $ORBIS_HOME/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export ORBIS_HOME=${ORBIS_HOME:-$root/.orbis}
run=$ORBIS_HOME/run
pidfile=$run/server.pid
logfile=$run/server.log
port=${ORBIS_PORT:-8800}
mkdir -p "$run"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

stop() {
  if running; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 50); do running || break; sleep 0.1; done
    running && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "${1:-start}" in
  start)
    stop  # a restart picks up code changes; deployments under way are resumed
    docker_host=$("$root/scripts/engine.sh" start | tail -n 1)
    if curl -fsS "http://127.0.0.1:$port/version" >/dev/null 2>&1; then
      echo "port $port is taken by another server; stop it or set ORBIS_PORT" >&2; exit 1
    fi
    DOCKER_HOST=$docker_host ORBIS_PORT=$port nohup "$root/.venv/bin/orbis" server \
      >>"$logfile" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
      curl -fsS "http://127.0.0.1:$port/version" >/dev/null 2>&1 && break
      running || { tail -n 20 "$logfile" >&2; echo "orbis server failed to start" >&2; exit 1; }
      sleep 0.1
    done
    echo "orbis server running on http://127.0.0.1:$port (pid $(cat "$pidfile"), log $logfile)"
    ;;
  stop) stop; echo "orbis server stopped" ;;
  status) running && echo "running (pid $(cat "$pidfile"))" || { echo "not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
