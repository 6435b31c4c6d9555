"""The floor of the gateway benchmark: the site's settings with one URL, served with no middleware.

What Django itself costs for a request that reads a bearer token and makes
one django-redis round trip: the bar a cached /v1/ hit is measured against.
The site's MIDDLEWARE stays in the settings (apps check it when Django starts);
bench/floor_wsgi.py serves the floor through a handler with none.
"""

from corporate.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
