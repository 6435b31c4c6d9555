#!/usr/bin/env bash
# Serve the app the way `make run` does: gunicorn with gevent workers and the
# background task workers, all stopped together on Ctrl-C. A task worker that
# stops is started again (deploy/supervise.sh); it waits out a database
# outage by itself (manage.py task_worker).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export WEB_WORKERS=${WEB_WORKERS:-2}
# Metrics of every gunicorn and task worker (prometheus-client's multiprocess
# mode), emptied on each start; /metrics serves them when METRICS_TOKEN is set.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-${VAR_DIR:-var}/prometheus}
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

say() { printf 'run_dev: %s\n' "$*"; }
# The processes name themselves to PostgreSQL (pg_stat_activity.application_name), as in production.
worker() { PGAPPNAME=corporate-worker exec "$VENV/bin/python" manage.py task_worker --worker-id "worker-$(hostname)-$$-$1"; }
# shellcheck source=deploy/supervise.sh
. deploy/supervise.sh

# TASK_WORKERS task workers: documents are ingested that many at a time.
workers=()
for n in $(seq 1 "${TASK_WORKERS:-2}"); do
  supervise "task worker $n" worker "$n" &
  workers+=($!)
done
echo "Serving on http://${BIND:-127.0.0.1}:${PORT:-8000}  (Ctrl-C stops)"
PGAPPNAME=corporate-web "$VENV/bin/gunicorn" -c deploy/gunicorn.conf.py corporate.wsgi:application &
web=$!
stop() {
  trap - INT TERM EXIT
  kill -TERM "$web" "${workers[@]}" 2>/dev/null || true
  wait "$web" "${workers[@]}" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT
status=0
wait "$web" || status=$?
say "gunicorn stopped (exit $status); stopping the task workers"
exit "$status"
