#!/usr/bin/env bash
# Serve the app the way `make run` does: gunicorn with gevent workers and the
# background task worker, both stopped together on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export WEB_WORKERS=${WEB_WORKERS:-2}

# TASK_WORKERS task workers: documents are ingested that many at a time.
workers=()
for n in $(seq 1 "${TASK_WORKERS:-2}"); do
  "$VENV/bin/python" manage.py db_worker --worker-id "worker-$(hostname)-$$-$n" &
  workers+=($!)
done
trap 'kill "${workers[@]}" 2>/dev/null || true' EXIT INT TERM

echo "Serving on http://${BIND:-127.0.0.1}:${PORT:-8000}  (Ctrl-C stops)"
"$VENV/bin/gunicorn" -c deploy/gunicorn.conf.py corporate.wsgi:application
