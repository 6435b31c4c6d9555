"""The isolation suite's vocabulary.

Every app of the project has `<app>/tests/isolation_endpoints.py` listing its
pages and API endpoints, and the URLs it leaves out on purpose:

    from workspaces.tests.isolation import Endpoint, Exempt

    def setup(ctx):
        # create objects inside ctx.workspace; keep them on ctx
        ctx.document = Document.objects.create(workspace=ctx.workspace, ...)

    ENDPOINTS = [
        Endpoint("document page", "GET", lambda ctx: f"/documents/acme/{ctx.document.pk}/", "viewer"),
        Endpoint("delete document", "POST", lambda ctx: f"/documents/acme/{ctx.document.pk}/delete/", "member",
                 redirect=lambda ctx: "/documents/acme/"),
        Endpoint("delete document (API)", "DELETE", lambda ctx: f"/api/documents/{ctx.document.pk}/", "member", api=True),
    ]

    EXEMPT = [
        # Lists only the user's own workspaces; nothing of one workspace is reachable from it.
        Exempt("documents/", "the user's own workspaces, to pick one"),
    ]

`test_isolation.py` tries every endpoint as an outsider (expects 404), as
each role below the least role (expects 403) and as the least role itself
(expects `success_problem()` to find nothing). Each try runs in its own
transaction, so a change made by one never leaks into another. Every URL
pattern of the project must be an endpoint's or exempt (`uncovered()`).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.messages import WARNING, get_messages
from django.urls import URLPattern, URLResolver, get_resolver, resolve

ROLES = ["viewer", "member", "admin", "owner"]


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[Any], str]
    role: str  # the least role that may use it
    data: Callable[[Any], Any] | None = None
    api: bool = False
    # "json" for API bodies, "multipart" for uploads, "form" for page posts
    format: str = "form"
    # statuses that count as success for the allowed role (default: 2xx)
    ok: tuple = field(default=())
    # A form post that succeeds by redirecting: where it redirects to (called after the request).
    # Without it a redirect is not a success: refusals redirect too, with an error message.
    redirect: Callable[[Any], str] | None = None

    def __str__(self):
        return f"{self.method} {self.name}"


@dataclass(frozen=True)
class Exempt:
    """A URL pattern deliberately outside the suite; `reason` says why nothing of a workspace is behind it."""

    route: str  # as resolve(path).route spells it, e.g. "documents/" or "api/invitations/accept/$"
    reason: str
    prefix: bool = False  # every route starting with `route` (a whole include, such as the admin)

    def matches(self, route):
        return route.startswith(self.route) if self.prefix else route == self.route


def project_apps():
    """The app configs of this project (top-level packages of the repository), not third-party ones."""
    from django.apps import apps

    base = Path(settings.BASE_DIR).resolve()
    return [config for config in apps.get_app_configs() if Path(config.path).resolve().parent == base]


def load_endpoints(app_config):
    """The app's isolation_endpoints module; an app without one is an error, never skipped."""
    name = f"{app_config.name}.tests.isolation_endpoints"
    try:
        module = import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name not in {name, f"{app_config.name}.tests"}:
            raise
        raise LookupError(
            f"The app {app_config.label!r} has no {app_config.label}/tests/isolation_endpoints.py: list its "
            "endpoints (ENDPOINTS) and the URLs that need no workspace (EXEMPT) there."
        ) from None
    if not hasattr(module, "ENDPOINTS") or not hasattr(module, "EXEMPT"):
        raise LookupError(f"{name} must define ENDPOINTS and EXEMPT (either may be empty, not both).")
    return module


def success_problem(endpoint, ctx, response):
    """Why the least role's response is not the endpoint's success, or None when it is."""
    status = response.status_code
    if endpoint.redirect is not None:
        expected = endpoint.redirect(ctx)
        if status != 302 or response.get("Location") != expected:
            return f"expected a redirect to {expected}, got {status} {response.get('Location', '')}"
    elif status not in (endpoint.ok or range(200, 300)):
        where = f" to {response['Location']}" if response.has_header("Location") else ""
        return f"got {status}{where}; a redirect counts only when declared (Endpoint(redirect=...))"
    request = getattr(response, "wsgi_request", None)
    warnings = [str(message) for message in get_messages(request) if message.level >= WARNING] if request else []
    if warnings:
        return f"answered {status} but with a warning or an error: {warnings}"
    return None


# DRF's routers add a ".json"-style twin of each route; it is the same view, covered with its base route.
_FORMAT_SUFFIX = re.compile(r"\\\.\(\?P<format>\[a-z0-9\]\+\)/\?\$$")


def base_route(route):
    return _FORMAT_SUFFIX.sub("/$", route)


def url_routes(patterns=None, prefix=""):
    """(route, view) of every URL pattern, spelled as resolve(path).route spells it."""
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        route = str(pattern.pattern)
        route = prefix + route.removeprefix("^") if prefix else route  # as Django's resolver joins them
        if isinstance(pattern, URLResolver):
            yield from url_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.lookup_str


def route_of(path):
    """The URL pattern that serves a path (its query string aside)."""
    return resolve(urlsplit(path).path).route


def uncovered(routes, covered, exemptions):
    """The (route, view) pairs that are neither an endpoint's route nor exempt."""
    covered = {base_route(route) for route in covered}
    return [
        (route, view)
        for route, view in routes
        if base_route(route) not in covered and not any(exempt.matches(base_route(route)) for exempt in exemptions)
    ]


def stale(routes, exemptions):
    """Exemptions that match no URL pattern any more (a future URL could slip in under them)."""
    bases = {base_route(route) for route, _ in routes}
    return [exempt for exempt in exemptions if not any(exempt.matches(route) for route in bases)]
