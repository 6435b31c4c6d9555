"""One way to answer an error, in the shape the caller expects.

Under /api/ the body is DRF's `{"detail": "..."}` (with the field's name as
a key too, where the problem is one field's); under /v1/ it is OpenAI's
`{"error": {"message", "type", "param", "code"}}`; everywhere else it is the
styled error page. The error handlers in corporate/views.py answer through
`error_response()`, and so can any view or middleware that refuses a request.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader

API = "api"
OPENAI = "openai"
PAGE = "page"

# OpenAI's error types by status: for every error under /v1/, the gateway's own included.
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def style_for(request):
    """API, OPENAI or PAGE, from the request's path."""
    path = request.path_info
    if path.startswith("/v1/") or path == "/v1":
        return OPENAI
    if path.startswith("/api/"):
        return API
    return PAGE


def error_response(request, status, title, message, code=None, *, param=None, detail=None):
    """The error answer for this request's path.

    `title` and `message` are for a person reading the page; `detail` (when
    the words for an API client differ) defaults to `message`. `param` names
    the field at fault. A 5xx page is rendered without the request, so it
    never needs the database or the session.
    """
    detail = message if detail is None else detail
    style = style_for(request)
    if style == OPENAI:
        error = {"message": detail, "type": OPENAI_ERROR_TYPES.get(status, "api_error"), "param": param, "code": code}
        return JsonResponse({"error": error}, status=status)
    if style == API:
        body = {"detail": detail}
        if param:
            body[param] = [detail]
        return JsonResponse(body, status=status)
    context = {"title": title, "message": message, "status": status}
    if status >= 500:
        page = loader.get_template("errors/500.html").render({**context, "SITE_NAME": settings.SITE_NAME})
        return HttpResponse(page, status=status)
    return render(request, "errors/error.html", context, status=status)


def _size_label(size):
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


BODY_LIMIT_ERRORS = (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)


def body_limit(exc):
    """(status, message, code) for one of Django's request body limits, naming the limit.

    Django raises these while it reads the body (DATA_UPLOAD_MAX_NUMBER_FILES,
    DATA_UPLOAD_MAX_NUMBER_FIELDS, DATA_UPLOAD_MAX_MEMORY_SIZE).
    """
    if isinstance(exc, TooManyFilesSent):
        return (
            400,
            f"Too many files: at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files per upload.",
            "too_many_files",
        )
    if isinstance(exc, TooManyFieldsSent):
        return (
            400,
            f"Too many form fields: at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} per request.",
            "too_many_fields",
        )
    limit = _size_label(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return 413, f"The request body is too large: at most {limit}, not counting uploaded files.", "too_large"
