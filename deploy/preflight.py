#!/usr/bin/env python3
"""Checks the production settings and services before deploy/start_production.sh starts anything.

Prints one line per problem and exits 1 if there is any: settings that
`manage.py check --deploy` would warn about, PostgreSQL or Redis not
answering, folders the app cannot write. Exits 2 on a malformed variable.
"""

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def problems():
    import django
    from django.conf import settings
    from django.core import checks

    django.setup()
    found = []
    if not settings.PRODUCTION:
        found.append("ENVIRONMENT must be production")
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "corporate.backends.postgresql":
        found.append("DATABASE_URL must name a PostgreSQL database (postgres://user@host:5432/name)")
    if not settings.REDIS_URL:
        found.append("REDIS_URL must name the Redis server (redis://127.0.0.1:6379/0)")

    # Errors of any check; warnings of the deployment (security) checks. Other
    # warnings, e.g. about the API schema, do not stop a deployment.
    for message in checks.run_checks(include_deployment_checks=True):
        if message.is_silenced():
            continue
        if message.level >= checks.ERROR or (message.level >= checks.WARNING and message.id.startswith("security.")):
            found.append(f"{message.id}: {message.msg}")

    from django.db import connection

    try:
        connection.ensure_connection()
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        found.append(f"PostgreSQL {db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}/{db['NAME']}: {detail}")
    else:
        connection.close()

    if settings.REDIS_URL:
        from django.core.cache import cache

        try:
            cache.client.get_client(write=True).ping()
        except Exception as exc:
            where = urlsplit(settings.REDIS_URL)
            found.append(f"Redis {where.hostname}:{where.port or 6379}{where.path}: {exc}")

    for name in ("STATIC_ROOT", "MEDIA_ROOT"):
        folder = Path(getattr(settings, name))
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            found.append(f"{name} {folder}: {exc.strerror}")
            continue
        if not os.access(folder, os.W_OK):
            found.append(f"{name} {folder} is not writable by this user")
    return found


def main():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        found = problems()
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"Configuration error: {exc}\n")
        return 2
    for line in found:
        sys.stderr.write(f"preflight: {line}\n")
    if found:
        return 1
    print("preflight: settings, PostgreSQL and Redis are ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
