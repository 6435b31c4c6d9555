#!/usr/bin/env bash
# Start the production stack from a checkout:
#   deploy/start_production.sh [all|web|worker|prepare]
#   all      (default) prepare, then gunicorn and TASK_WORKERS task workers (2);
#            a task worker that stops is started again, gunicorn stopping stops all
#   web      prepare, then gunicorn only          (systemd: corporate-web.service)
#   worker   one background task worker           (systemd: corporate-worker@N.service)
#   prepare  check prerequisites, collect static files, migrate, and stop
#
# Settings come from the environment, and from ./.env (or $ENV_FILE) for any
# variable the environment does not set; .env.example lists them all. nginx
# in front: see deploy/nginx.conf and the README. Linux only (gunicorn).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

say() { printf 'start_production: %s\n' "$*"; }
fail() { printf 'start_production: %s\n' "$*" >&2; exit 1; }

case "$mode" in all|web|worker|prepare) ;; *) fail "unknown mode '$mode' (all, web, worker or prepare)" ;; esac

# Values from the env file, without overriding the environment; no shell
# evaluation, so "Corporate AI <noreply@example.com>" stays as it is.
env_file=${ENV_FILE:-.env}
if [ -f "$env_file" ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key=${line%%=*}
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    [ -n "${!key+set}" ] || export "$key=${line#*=}"
  done < "$env_file"
fi

export ENVIRONMENT=${ENVIRONMENT:-production}
# Behind deploy/nginx.conf, nginx sends downloads after Django checked access.
export FILES_VIA_NGINX=${FILES_VIA_NGINX:-true}
[ "$ENVIRONMENT" = production ] || fail "ENVIRONMENT is '$ENVIRONMENT'; this script starts production (use make run for development)"

# Prerequisites: the platform, the virtualenv, the required settings.
[ "$(uname -s)" = Linux ] || fail "gunicorn needs Linux (on Windows use WSL, or the development server; see README)"
[ -x "$PY" ] || fail "no virtualenv at $VENV: python3 -m venv $VENV && $VENV/bin/pip install -r requirements.txt"
[ -x "$VENV/bin/gunicorn" ] || fail "gunicorn is missing from $VENV: $VENV/bin/pip install -r requirements.txt"
missing=()
for name in SECRET_KEY ALLOWED_HOSTS DATABASE_URL REDIS_URL; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
[ ${#missing[@]} -eq 0 ] || fail "set ${missing[*]} (see .env.example)"

# PostgreSQL sees which process a connection belongs to (pg_stat_activity).
export PGAPPNAME=${PGAPPNAME:-corporate}

# Metrics of every gunicorn and task worker (prometheus-client's multiprocess
# mode); /metrics serves them when METRICS_TOKEN is set. Emptied when the whole
# stack starts (`all`). With separate services (`web`, `worker`) the counters
# are kept, so the web service starting again does not pull the files from
# under running task workers; only the web workers' live gauges (the pools of
# workers that no longer run) are removed when the web service starts.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-${VAR_DIR:-var}/prometheus}
[ "$mode" != all ] || rm -rf "$PROMETHEUS_MULTIPROC_DIR"
[ "$mode" != web ] || rm -f "$PROMETHEUS_MULTIPROC_DIR"/gauge_live*.db
mkdir -p "$PROMETHEUS_MULTIPROC_DIR" || fail "cannot create PROMETHEUS_MULTIPROC_DIR=$PROMETHEUS_MULTIPROC_DIR"

if [ "$mode" != worker ]; then
  say "checking settings, PostgreSQL and Redis"
  "$PY" deploy/preflight.py || fail "fix the problems above, then start again"
  say "collecting static files into ${STATIC_ROOT:-var/static}"
  "$PY" manage.py collectstatic --noinput -v0
  say "migrating the database"
  "$PY" manage.py migrate --noinput -v1
fi

web() { PGAPPNAME=corporate-web exec "$VENV/bin/gunicorn" -c deploy/gunicorn.conf.py corporate.wsgi:application; }
# The task worker waits out a database outage itself (manage.py task_worker).
worker() {
  PGAPPNAME=corporate-worker exec "$PY" manage.py task_worker --no-reload --worker-id "worker-$(hostname)-$$-$1"
}

case "$mode" in
  prepare) say "ready"; exit 0 ;;
  web) web ;;
  worker) worker "${WORKER_NUMBER:-1}" ;;
esac

# all: gunicorn and TASK_WORKERS task workers. A task worker that stops is
# started again (deploy/supervise.sh) and never takes the web server down;
# when gunicorn stops, or on Ctrl-C / SIGTERM, everything stops.
# shellcheck source=deploy/supervise.sh
. deploy/supervise.sh
pids=()
for n in $(seq 1 "${TASK_WORKERS:-2}"); do
  supervise "task worker $n" worker "$n" &
  pids+=($!)
done
( web ) &
web_pid=$!
pids+=("$web_pid")
stop() {
  trap - INT TERM
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
say "gunicorn on ${BIND:-127.0.0.1}:${PORT:-8000} (pid $web_pid), ${TASK_WORKERS:-2} task worker(s)"
status=0
wait "$web_pid" || status=$?
say "gunicorn stopped (exit $status); stopping the task workers"
stop
exit "$status"
