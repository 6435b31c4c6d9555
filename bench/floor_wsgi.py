"""WSGI application of the benchmark's floor (bench.floor_settings)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.floor_settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
