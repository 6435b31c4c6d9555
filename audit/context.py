"""What the audit log knows about the work in progress: the request, or who is acting."""

import contextlib
import contextvars

_request = contextvars.ContextVar("audit_request", default=None)
_actor = contextvars.ContextVar("audit_actor", default=None)


def current_request():
    return _request.get()


def current_actor():
    return _actor.get()


@contextlib.contextmanager
def acting(user):
    token = _actor.set(user)
    try:
        yield
    finally:
        _actor.reset(token)


class AuditContextMiddleware:
    """Remembers the request being served, so events recorded by model signals know who and where from."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
