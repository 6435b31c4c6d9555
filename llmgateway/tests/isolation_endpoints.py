"""Gateway pages and API endpoints for the isolation suite (see workspaces/tests/isolation.py)."""

from llmgateway.models import ApiKey
from workspaces.tests.isolation import Endpoint, Exempt


def setup(ctx):
    ctx.key, _ = ApiKey.create(ctx.workspace, "isolation", ctx.users["admin"])


ENDPOINTS = [
    Endpoint(
        "gateway of a workspace",
        "GET",
        lambda ctx: f"/gateway/{ctx.workspace.slug}/",
        "viewer",
        redirect=lambda ctx: f"/gateway/{ctx.workspace.slug}/models/",
    ),
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
        "gateway revoke key",
        "POST",
        lambda ctx: f"/gateway/{ctx.workspace.slug}/keys/{ctx.key.pk}/revoke/",
        "admin",
        redirect=lambda ctx: f"/gateway/{ctx.workspace.slug}/keys/",
    ),
    Endpoint("gateway cache page", "GET", lambda ctx: f"/gateway/{ctx.workspace.slug}/cache/", "admin"),
    Endpoint(
        "gateway cache policy",
        "POST",
        lambda ctx: f"/gateway/{ctx.workspace.slug}/cache/",
        "admin",
        data=lambda ctx: {"cache_policy": "deterministic"},
        redirect=lambda ctx: f"/gateway/{ctx.workspace.slug}/cache/",
    ),
    Endpoint(
        "gateway cache clear",
        "POST",
        lambda ctx: f"/gateway/{ctx.workspace.slug}/cache/clear/",
        "admin",
        redirect=lambda ctx: f"/gateway/{ctx.workspace.slug}/cache/",
    ),
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

EXEMPT = [
    Exempt("gateway/", "the user's own workspaces, to pick one (test_pages_and_commands.py)"),
    Exempt("api/gateway/cache/", "cache statistics of the whole site: staff only (test_pages_and_commands.py)"),
    # API keys, not sessions: test_api_keys.py checks that a key only ever reaches its own workspace.
    Exempt("v1/", "the OpenAI-compatible API, reached with a workspace's API key", prefix=True),
]
