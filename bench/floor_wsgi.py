"""WSGI application of the benchmark's floor (bench.floor_settings): Django's handler with no middleware."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.floor_settings")

import django  # noqa: E402

from corporate.handlers import LeanWSGIHandler  # noqa: E402

django.setup(set_prefix=False)
application = LeanWSGIHandler([])
