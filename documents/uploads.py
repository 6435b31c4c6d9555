"""Receiving uploaded files: refuse what is too big or badly named before it is stored.

Django quietly strips folders and control characters from uploaded file
names; we would rather tell the person. `install_guard(request)` puts
`UploadGuard` first among the request's upload handlers, before anything
reads the body (see the upload views). The guard then

- refuses a body over the limit from its Content-Length, before reading it;
- parses the multipart body itself with `CheckedMultiPartParser`, which
  records each raw file name's problem (folders, `..`, control characters,
  over 255 characters) instead of silently repairing it;
- skips (never stores) a file with a bad name, or one that grows past the
  per-file limit while streaming, and notes why in `request.upload_rejections`.

Django's own limits still apply: DATA_UPLOAD_MAX_NUMBER_FILES and
DATA_UPLOAD_MAX_NUMBER_FIELDS refuse a request with thousands of parts.
"""

import html
import unicodedata

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http.multipartparser import MultiPartParser, MultiPartParserError

from corporate.errors import BODY_LIMIT_ERRORS, body_limit

MAX_NAME_LENGTH = 255
# Room for the multipart boundaries and form fields around the files.
BODY_OVERHEAD = 1024 * 1024
PARSE_ERRORS = (MultiPartParserError, TooManyFilesSent, TooManyFieldsSent, RequestDataTooBig)


class UploadTooLarge(MultiPartParserError):
    """The request body is over the upload limit (HTTP 413)."""


def size_label(size):
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def limit_label():
    return size_label(settings.UPLOAD_MAX_BYTES)


def file_name_problem(name):
    """Why a file name is refused, or None when it is fine."""
    if name is None or not name.strip():
        return "The file has no name."
    if any(unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"} for char in name):
        return "File names may not contain control characters."
    parts = name.replace("\\", "/").split("/")
    if any(part in {".", ".."} for part in parts):
        return "File names may not refer to a parent folder (..)."
    if len(parts) > 1:
        return "File names may not contain folder separators (/ or \\)."
    if len(name) > MAX_NAME_LENGTH:
        return f"The file name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}."
    return None


def display_name(name, length=80):
    """A file name safe to show: control characters as '?', shortened."""
    shown = "".join("?" if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in name or "")
    return shown if len(shown) <= length else shown[: length - 1] + "…"


class CheckedMultiPartParser(MultiPartParser):
    """Django's parser, but a file name's problems are noted for the guard, not silently repaired."""

    def __init__(self, *args, guard, **kwargs):
        super().__init__(*args, **kwargs)
        self.guard = guard

    def sanitize_file_name(self, file_name):
        raw = html.unescape(file_name)
        problem = file_name_problem(raw)
        cleaned = super().sanitize_file_name(file_name)
        self.guard.current_name = raw
        self.guard.current_problem = problem
        if problem and not cleaned:
            cleaned = "unnamed"  # so the guard sees the part and reports it
        return cleaned


class UploadGuard(FileUploadHandler):
    def __init__(self, request=None, max_bytes=None):
        super().__init__(request)
        self.max_bytes = max_bytes or settings.UPLOAD_MAX_BYTES
        self.rejections = []
        self.current_name = None
        self.current_problem = None
        self.received = 0
        self._parsing = False
        if request is not None:
            request.upload_rejections = self.rejections

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if self._parsing:
            return None
        if content_length > self.max_bytes + BODY_OVERHEAD:
            raise UploadTooLarge(
                f"The upload is {size_label(content_length)}; the limit is {limit_label()} per upload."
            )
        handlers = list(self.request.upload_handlers)
        parser = CheckedMultiPartParser(META, input_data, handlers, encoding, guard=self)
        self._parsing = True
        try:
            return parser.parse()
        finally:
            self._parsing = False

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0
        if self.current_problem:
            self.rejections.append(
                {
                    "name": display_name(self.current_name),
                    "detail": self.current_problem,
                    "code": "bad_name",
                    "status": 400,
                }
            )
            raise SkipFile

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.rejections.append(
                {
                    "name": display_name(self.current_name),
                    "detail": f"The file is larger than {limit_label()}, the limit.",
                    "code": "too_large",
                    "status": 413,
                }
            )
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None


def install_guard(request):
    """Put the guard first among the request's upload handlers (before the body is read)."""
    guard = UploadGuard(request)
    request.upload_handlers.insert(0, guard)
    return guard


def parse_error(exc):
    """(status, a person's words, code) for a refused multipart body."""
    if isinstance(exc, UploadTooLarge):
        return 413, str(exc), "too_large"
    if isinstance(exc, BODY_LIMIT_ERRORS):
        return body_limit(exc)
    if isinstance(exc, MultiPartParserError) and "header size" in str(exc):
        # A part's headers over Django's 1 KB: in practice a file name of hundreds of characters.
        return 400, f"A file name is too long; the limit is {MAX_NAME_LENGTH} characters.", "bad_name"
    return 400, "The upload could not be read; try again.", "refused"
