"""The WSGI application: /v1/ through a short middleware list, the rest through the site's (corporate.handlers)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corporate.settings")

from corporate.handlers import get_application  # noqa: E402

application = get_application()
