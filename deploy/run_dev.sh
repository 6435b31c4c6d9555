#!/usr/bin/env bash
# Serve the app the way `make run` does: gunicorn with gevent workers and the
# background task worker, both stopped together on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export WEB_WORKERS=${WEB_WORKERS:-2}

"$VENV/bin/python" manage.py db_worker --worker-id "worker-$(hostname)-$$" &
worker=$!
trap 'kill "$worker" 2>/dev/null || true' EXIT INT TERM

echo "Serving on http://${BIND:-127.0.0.1}:${PORT:-8000}  (Ctrl-C stops)"
"$VENV/bin/gunicorn" -c deploy/gunicorn.conf.py corporate.wsgi:application
