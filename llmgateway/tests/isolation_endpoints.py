"""Gateway pages and API endpoints for the isolation suite (see workspaces/tests/isolation.py).

Not listed, because they are not reached through a workspace in the URL:
/gateway/ (lists only the user's own workspaces), /api/gateway/cache/
(staff only; test_api.py), and /v1/ (API keys, not sessions; test_api_keys.py
checks that a key only ever reaches its own workspace).
"""

from llmgateway.models import ApiKey
from workspaces.tests.isolation import Endpoint


def setup(ctx):
    ctx.key, _ = ApiKey.create(ctx.workspace, "isolation", ctx.users["admin"])


ENDPOINTS = [
    Endpoint("gateway models page", "GET", lambda ctx: f"/gateway/{ctx.workspace.slug}/models/", "viewer"),
    Endpoint("gateway keys page", "GET", lambda ctx: f"/gateway/{ctx.workspace.slug}/keys/", "admin"),
    Endpoint(
        "gateway create key",
        "POST",
        lambda ctx: f"/gateway/{ctx.workspace.slug}/keys/",
        "admin",
        data=lambda ctx: {"name": "new key", "scopes": ["completions"]},
    ),
    Endpoint(
        "gateway revoke key", "POST", lambda ctx: f"/gateway/{ctx.workspace.slug}/keys/{ctx.key.pk}/revoke/", "admin"
    ),
    Endpoint("gateway cache page", "GET", lambda ctx: f"/gateway/{ctx.workspace.slug}/cache/", "admin"),
    Endpoint(
        "gateway cache policy",
        "POST",
        lambda ctx: f"/gateway/{ctx.workspace.slug}/cache/",
        "admin",
        data=lambda ctx: {"cache_policy": "deterministic"},
    ),
    Endpoint("gateway cache clear", "POST", lambda ctx: f"/gateway/{ctx.workspace.slug}/cache/clear/", "admin"),
    Endpoint("gateway keys (API)", "GET", lambda ctx: f"/api/gateway/{ctx.workspace.slug}/keys/", "admin", api=True),
    Endpoint(
        "gateway create key (API)",
        "POST",
        lambda ctx: f"/api/gateway/{ctx.workspace.slug}/keys/",
        "admin",
        api=True,
        format="json",
        data=lambda ctx: {"name": "api key", "scopes": ["completions"]},
    ),
    Endpoint(
        "gateway key detail (API)",
        "GET",
        lambda ctx: f"/api/gateway/{ctx.workspace.slug}/keys/{ctx.key.pk}/",
        "admin",
        api=True,
    ),
    Endpoint(
        "gateway revoke key (API)",
        "DELETE",
        lambda ctx: f"/api/gateway/{ctx.workspace.slug}/keys/{ctx.key.pk}/",
        "admin",
        api=True,
    ),
    Endpoint(
        "gateway models (API)", "GET", lambda ctx: f"/api/gateway/{ctx.workspace.slug}/models/", "viewer", api=True
    ),
    Endpoint(
        "gateway cache stats (API)", "GET", lambda ctx: f"/api/gateway/{ctx.workspace.slug}/cache/", "admin", api=True
    ),
]
