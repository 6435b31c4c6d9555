"""Request checks that every view would otherwise repeat."""

import logging
from types import SimpleNamespace

from django.core.handlers.exception import response_for_exception
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware

from corporate.errors import PAGE, error_response, style_for

log = logging.getLogger(__name__)


class ValidateHostMiddleware:
    """Refuse a Host header outside ALLOWED_HOSTS (400), as the full stack's CommonMiddleware does.

    For the lean /v1/ stack, which has no middleware that reads the host.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.get_host()  # raises DisallowedHost, answered by the 400 handler
        return self.get_response(request)


class RejectNulInQueryMiddleware:
    """A NUL character in the query string is refused with 400.

    PostgreSQL cannot hold NUL in text, so a search or filter carrying one
    would fail deep inside a query. Form fields and API fields refuse NUL on
    their own; query strings are read directly by many views, so they are
    checked once here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = refuse_nul_in_query(request)
        return refused if refused is not None else self.get_response(request)


class MethodNotAllowedPageMiddleware:
    """A page address visited with a method it does not take (require_POST's empty 405) answers the styled page.

    A bookmark, a reload or a typed address of what a form's button posts to
    (signing out, archiving) would otherwise show the browser's blank error.
    The API's and /v1/'s 405s are JSON already and pass through.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 405 or response.content or style_for(request) != PAGE:
            return response
        message = "This address is what a button on a page sends its form to; go back and use the button."
        page = error_response(request, 405, "Not a page to visit", message, "method_not_allowed")
        page["Allow"] = response.get("Allow", "")
        return page


def refuse_nul_in_query(request):
    """The 400 answer to a query string that carries a NUL character, else None."""
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        message = "The address contains a NUL character (%00), which is not allowed."
        return error_response(request, 400, "Bad request", message, "nul_in_query")
    return None


class DatabaseUnavailableMiddleware:
    """While the database is unreachable, a page or API call answers 503 with Retry-After, not 500.

    Catches what a view (or the template it returns) raises when PostgreSQL
    is restarting or down (OperationalError, InterfaceError) - including
    loading the session or the signed-in user, which happens lazily in the
    view - and the web worker's pool timing out (corporate/backends/postgresql
    raises it as OperationalError). The answer's shape follows the path:
    the styled error page, `{"detail": ...}` under /api/, OpenAI's error
    under /v1/ (corporate.views.database_unavailable). Other database errors
    (a constraint, a bad query) are bugs and stay 500s.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_database_unavailable(exception):
            return None
        _log_outage(request, exception)
        from corporate.views import database_unavailable

        return database_unavailable(request, exception)


class ApiGuardMiddleware(SecurityMiddleware):
    """The /v1/ stack's checks in one step: SecurityMiddleware, DatabaseUnavailableMiddleware,
    ValidateHostMiddleware and RejectNulInQueryMiddleware, in that order, with the same answers.

    The OpenAI-compatible API answers thousands of cache hits a second, and
    each middleware is a layer of calls (Django wraps every one in its
    exception handler). The HTTPS redirect is SecurityMiddleware's own; its
    response headers are what it sets on an empty response, worked out once
    for a plain and a secure request, and put on each answer unless the view
    set them (as SecurityMiddleware does). A refusal (a host outside
    ALLOWED_HOSTS, a NUL in the query) gets them too, as it did when
    SecurityMiddleware was outside those checks.
    """

    sync_capable, async_capable = True, False

    def __init__(self, get_response):
        from llmgateway.metering.records import new_id

        super().__init__(get_response)
        self._headers = {secure: self._response_headers(secure) for secure in (False, True)}
        self._new_id = new_id

    def _response_headers(self, secure):
        response = HttpResponse()
        del response.headers["Content-Type"]
        super().process_response(SimpleNamespace(is_secure=lambda: secure), response)
        return tuple(response.headers._store.items())

    def __call__(self, request):
        try:
            response = self.process_request(request)  # the redirect to HTTPS, when asked for
            if response is None:
                response = self._checked(request)
        except Exception as exc:  # DisallowedHost and the like: Django's 400, with the headers below
            response = response_for_exception(request, exc)
        return self.process_response(request, response)

    def _checked(self, request):
        request.get_host()  # raises DisallowedHost outside ALLOWED_HOSTS (ValidateHostMiddleware)
        refused = refuse_nul_in_query(request)
        return refused if refused is not None else self.get_response(request)

    def process_response(self, request, response):
        # Straight into the header store: names and values of our own, already checked by Django once.
        store = response.headers._store
        for lower, header in self._headers[request.is_secure()]:
            if lower not in store:
                store[lower] = header
        if "x-request-id" not in store:
            # Every answer names a request, as OpenAI's do: a completion's is its usage record's id (set by
            # the view), any other answer (an error, the model list) gets one of its own.
            store["x-request-id"] = ("x-request-id", self._new_id())
        return response

    process_exception = DatabaseUnavailableMiddleware.process_exception


def is_database_unavailable(exception):
    """True for an error that says the database cannot be reached now, also when wrapped in another error."""
    from django.db import InterfaceError, OperationalError

    from corporate.backends.postgresql.pool import PoolTimeout

    seen = 0
    while exception is not None and seen < 5:
        if isinstance(exception, (OperationalError, InterfaceError, PoolTimeout)):
            return not _is_sqlite_schema_error(exception)
        exception = exception.__cause__ or exception.__context__
        seen += 1
    return False


def _is_sqlite_schema_error(exception):
    # SQLite reports a missing table or column as OperationalError too; that is a bug, not an outage.
    text = str(exception)
    return text.startswith(("no such table", "no such column"))


_last_outage_log = [0.0]


def _log_outage(request, exception):
    """One warning every 10 s per process with the cause; Django logs each 503 response anyway."""
    import time

    now = time.monotonic()
    if now - _last_outage_log[0] >= 10:
        _last_outage_log[0] = now
        log.warning(
            "answering 503 to %s %s: the database does not answer (%s: %s)",
            request.method,
            request.path,
            exception.__class__.__name__,
            str(exception).strip().splitlines()[0] if str(exception).strip() else "",
        )
