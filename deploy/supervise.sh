# Keeps a background process running; sourced by start_production.sh and run_dev.sh.
#
#   supervise NAME COMMAND [ARGS...] &
#
# runs COMMAND and, whenever it stops, logs it (through the caller's `say`)
# and starts it again: after 1 s, doubling up to 30 s while it keeps stopping
# within a minute of its start, so a crash loop does not spin. SIGTERM (or
# SIGINT) stops COMMAND and the supervisor. COMMAND should `exec` its program,
# so that the logged pid is the program's.
supervise() {
  local name=$1 child='' pause='' delay=1 started status
  shift
  # shellcheck disable=SC2317  # called by the trap
  _supervise_stop() {
    trap - TERM INT
    [ -z "$pause" ] || kill -TERM "$pause" 2>/dev/null || true
    if [ -n "$child" ]; then
      kill -TERM "$child" 2>/dev/null || true
      wait "$child" 2>/dev/null || true
    fi
    exit 0
  }
  trap _supervise_stop TERM INT
  while true; do
    started=$SECONDS
    "$@" &
    child=$!
    say "$name started (pid $child)"
    status=0
    wait "$child" || status=$?
    child=''
    [ $((SECONDS - started)) -lt 60 ] || delay=1
    say "$name stopped (exit $status); starting it again in $delay s"
    sleep "$delay" &
    pause=$!
    wait "$pause" || true
    pause=''
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
  done
}
