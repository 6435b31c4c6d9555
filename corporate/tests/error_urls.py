"""The site's URLs plus views that fail on purpose, under /api/, /v1/ and a page path.

For the error shape tests (test_error_shapes.py): Django's own error handling
turns each failure into the handlers' answers, as it would for a real view.
"""

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import path

from corporate.urls import handler400, handler403, handler404, handler500
from corporate.urls import urlpatterns as site_urlpatterns


def fail(request):
    raise RuntimeError("a bug in a view")


def refuse(request):
    raise PermissionDenied("You need the admin role or higher to do that.")


def post_form(request):
    # A plain Django view, so CsrfViewMiddleware (not DRF) checks the token.
    return HttpResponse("posted")


urlpatterns = [
    path("api/_fail/", fail),
    path("v1/_fail", fail),
    path("_fail/", fail),
    path("api/_refuse/", refuse),
    path("v1/_refuse", refuse),
    path("api/_post/", post_form),
    path("v1/_post", post_form),
    *site_urlpatterns,
]

__all__ = ["urlpatterns", "handler400", "handler403", "handler404", "handler500"]
