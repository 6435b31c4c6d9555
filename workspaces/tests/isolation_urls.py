"""The site's URLs plus one that no app has listed, for the isolation suite's own test."""

from django.http import HttpResponse
from django.urls import path

from corporate.urls import handler400, handler403, handler404, handler500
from corporate.urls import urlpatterns as site_urlpatterns


def export(request, slug):
    return HttpResponse("a new page inside a workspace")


urlpatterns = [*site_urlpatterns, path("workspaces/<slug:slug>/export/", export)]

__all__ = ["urlpatterns", "handler400", "handler403", "handler404", "handler500"]
