"""The isolation suite's vocabulary.

Each app lists its pages and API endpoints in `<app>/tests/isolation_endpoints.py`:

    from workspaces.tests.isolation import Endpoint

    def setup(ctx):
        # create objects inside ctx.workspace; keep them on ctx
        ctx.document = Document.objects.create(workspace=ctx.workspace, ...)

    ENDPOINTS = [
        Endpoint("document detail page", "GET", lambda ctx: f"/documents/{ctx.document.pk}/", "viewer"),
        Endpoint("delete document (API)", "DELETE", lambda ctx: f"/api/documents/{ctx.document.pk}/", "member", api=True),
    ]

`test_isolation.py` tries every endpoint as an outsider (expects 404), as
each role below the least role (expects 403) and as the least role itself
(expects neither 403 nor 404, nor a 5xx). Each try runs in its own
transaction, so a change made by one never leaks into another.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    # statuses that count as success for the allowed role (default: < 400)
    ok: tuple = field(default=())

    def __str__(self):
        return f"{self.method} {self.name}"
