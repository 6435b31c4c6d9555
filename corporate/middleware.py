"""Request checks that every view would otherwise repeat."""

from corporate.errors import error_response


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
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            message = "The address contains a NUL character (%00), which is not allowed."
            return error_response(request, 400, "Bad request", message, "nul_in_query")
        return self.get_response(request)
