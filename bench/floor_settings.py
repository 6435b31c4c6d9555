"""The floor of the gateway benchmark: the site's settings with no middleware and one URL.

What Django itself costs for a request that reads a bearer token and makes
one django-redis round trip: the bar a cached /v1/ hit is measured against.
"""

from corporate.settings import *  # noqa: F403

MIDDLEWARE = []
ROOT_URLCONF = "bench.floor_urls"
