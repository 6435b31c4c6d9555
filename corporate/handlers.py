"""WSGI handlers: the site's, and a lean one for the OpenAI-compatible API.

`/v1/` is called by programs with a bearer key, never by a browser with a
session: sessions, CSRF, authentication, messages, clickjacking and CSP
headers, the sign-in lockout and static files do nothing for it but cost
time on every cache hit. `dispatch()` hands `/v1/` to a handler built from
`settings.V1_MIDDLEWARE` (host validation, the HTTPS redirect and security
headers, the request checks that every path needs) and everything else to
Django's handler with the full `settings.MIDDLEWARE`. Both resolve URLs the
same way, raise the same errors and end requests the same way (database
connections returned, request_finished sent).
"""

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

V1_PREFIX = "/v1/"


class LeanWSGIHandler(WSGIHandler):
    """Django's WSGI handler over another middleware list."""

    def __init__(self, middleware):
        self.middleware = list(middleware)
        super().__init__()

    def load_middleware(self, is_async=False):
        # Django builds the chain from settings.MIDDLEWARE. This runs once,
        # when the application is created at start-up (before any request is
        # served), so swapping the list for the duration is not seen by others.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = self.middleware
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


def dispatch(site, api):
    """A WSGI application that sends /v1/ to `api` and everything else to `site`."""

    def application(environ, start_response):
        if environ.get("PATH_INFO", "").startswith(V1_PREFIX):
            return api(environ, start_response)
        return site(environ, start_response)

    application.site, application.api = site, api
    return application


def get_application():
    import django

    django.setup(set_prefix=False)
    return dispatch(WSGIHandler(), LeanWSGIHandler(settings.V1_MIDDLEWARE))
