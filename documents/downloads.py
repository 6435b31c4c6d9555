"""The original file of a document, as a download that can never run in the site's origin."""

import os
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.utils.http import content_disposition_header


def _protect(response, document):
    response["Content-Disposition"] = content_disposition_header(True, document.original_name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    return response


def _local_path(document):
    try:
        return document.file.path
    except NotImplementedError:  # remote storage (S3): no local path
        return None


def file_response(document):
    """An attachment with nosniff and a sandbox CSP.

    With FILES_VIA_NGINX on (behind deploy/nginx.conf) and files on local
    disk, the access check stays here and nginx sends the bytes
    (X-Accel-Redirect to its internal /_protected_media/ location), so a
    large download never occupies a web worker.
    """
    path = _local_path(document)
    if settings.FILES_VIA_NGINX and path:
        relative = os.path.relpath(path, settings.MEDIA_ROOT)
        if relative.startswith(".."):
            raise Http404("The stored file is outside the media folder.")
        response = HttpResponse(content_type="application/octet-stream")
        response["X-Accel-Redirect"] = "/_protected_media/" + quote(relative)
        return _protect(response, document)
    try:
        handle = document.file.open("rb")
    except FileNotFoundError:
        raise Http404("The stored file is missing.") from None
    return _protect(FileResponse(handle, content_type="application/octet-stream"), document)
