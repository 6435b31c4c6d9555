"""Production settings plus a few endpoints that only the stack tests use.

The stack tests start gunicorn with DJANGO_SETTINGS_MODULE pointing here, so
the production URLconf never has these endpoints.
"""

from corporate.settings import *  # noqa: F403

ROOT_URLCONF = "deploy.tests.stack_urls"
