"""Settings for the gateway benchmark only: the site's settings plus the floor view's URL."""

from corporate.settings import *  # noqa: F403

ROOT_URLCONF = "bench.gateway_urls"
