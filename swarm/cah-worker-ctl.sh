#!/bin/sh
# cah-worker-ctl start|stop|restart|status|logs [-f]|mode: the swarm worker on this host.
# Under systemd it drives cah-worker.service; where systemd is absent (containers, test hosts) it
# keeps the worker alive with setsid/nohup and a pid file. Every path is relative to $CAH_HOST_ROOT
# (unset on real servers).
set -eu
R="${CAH_HOST_ROOT:-}"
ENV_FILE="$R/etc/cah/worker.env"
PID_FILE="$R/run/cah/worker.pid"
LOG_FILE="$R/var/log/cah/worker.log"
ENTRY="$R/opt/cah/current/dist/src/cli/main.js"
# The Node.js pinned by swarm/node-release.json (installed by cah-bootstrap) before any other.
PATH="$R/opt/cah/node/bin:$PATH"

uses_systemd() {
  [ -z "$R" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]
}

worker_pid() {
  [ -f "$PID_FILE" ] || return 1
  pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # The pid may have been reused by another program.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "cli/main.js worker" || return 1
  echo "$pid"
}

start_fallback() {
  if pid=$(worker_pid); then echo "running pid=$pid"; return 0; fi
  [ -f "$ENV_FILE" ] || { echo "cah-worker-ctl: $ENV_FILE is missing (run cah swarm up)" >&2; exit 2; }
  mkdir -p "$(dirname "$PID_FILE")" "$(dirname "$LOG_FILE")"
  set -a
  . "$ENV_FILE"
  set +a
  ulimit -n 65536 2>/dev/null || true
  cd "$R/opt/cah/current"
  setsid nohup node "$ENTRY" worker --coordinator "$CAH_COORDINATOR" --actor-id "$CAH_ACTOR_ID" \
    >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  echo "running pid=$!"
}

stop_fallback() {
  pid=$(worker_pid) || { rm -f "$PID_FILE"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
}

case "${1:-}" in
  start)
    if uses_systemd; then systemctl enable --now cah-worker.service; else start_fallback; fi ;;
  stop)
    if uses_systemd; then systemctl stop cah-worker.service; else stop_fallback; fi ;;
  restart)
    if uses_systemd; then systemctl daemon-reload && systemctl enable cah-worker.service && systemctl restart cah-worker.service
    else stop_fallback; start_fallback; fi ;;
  status)
    if uses_systemd; then
      systemctl is-active --quiet cah-worker.service && echo "running pid=$(systemctl show -p MainPID --value cah-worker.service)" || { echo stopped; exit 3; }
    elif pid=$(worker_pid); then echo "running pid=$pid"
    else echo stopped; exit 3; fi ;;
  logs)
    follow=""
    [ "${2:-}" = "-f" ] && follow=1
    if uses_systemd; then
      if [ -n "$follow" ]; then exec journalctl -u cah-worker.service --no-pager -n 200 -f; else exec journalctl -u cah-worker.service --no-pager -n 200; fi
    else
      [ -f "$LOG_FILE" ] || { echo "cah-worker-ctl: no log yet ($LOG_FILE)" >&2; exit 1; }
      if [ -n "$follow" ]; then exec tail -n 200 -F "$LOG_FILE"; else exec tail -n 200 "$LOG_FILE"; fi
    fi ;;
  mode)
    if uses_systemd; then echo systemd; else echo fallback; fi ;;
  *)
    echo "usage: cah-worker-ctl start|stop|restart|status|logs [-f]|mode" >&2
    exit 2 ;;
esac
