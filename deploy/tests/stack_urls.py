from django.urls import path

from corporate.urls import handler400, handler403, handler404, handler500
from corporate.urls import urlpatterns as site_urlpatterns
from deploy.tests import stack_views

urlpatterns = [
    path("_stack/runtime", stack_views.runtime),
    path("_stack/sleep", stack_views.sleep),
    path("_stack/upload", stack_views.upload),
    path("_stack/stream", stack_views.stream, {"opt_out_of_buffering": True}),
    # Under /v1/, where nginx streams without being asked (the gateway's home).
    path("v1/_stack/stream", stack_views.stream, {"opt_out_of_buffering": False}),
    *site_urlpatterns,
]

__all__ = ["urlpatterns", "handler400", "handler403", "handler404", "handler500"]
