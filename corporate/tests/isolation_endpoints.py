"""corporate's URLs for the isolation suite (workspaces/tests/test_isolation.py).

Nothing here is inside a workspace, so there are no endpoints, only the URLs
left out and why. A new URL of the site that needs no workspace (a metrics
page, another sign-in step) gets a line here.
"""

from django.conf import settings

from workspaces.tests.isolation import Exempt

ENDPOINTS = []

EXEMPT = [
    Exempt("", "the dashboard: the signed-in user's own areas and panels"),
    Exempt("health", "liveness of the database and cache, no data (corporate/tests/test_health.py)"),
    Exempt("favicon.ico", "the site's icon, a static file (corporate/tests/test_appearance.py)"),
    Exempt(
        "metrics", "Prometheus metrics for a bearer token, no workspace data (corporate/tests/test_observability.py)"
    ),
    Exempt("system/", "the System page: staff only, no workspace data (corporate/tests/test_system_page.py)"),
    Exempt(
        "accounts/",
        "sign-in, sign-out, password change and reset, the colour scheme: the user's own account",
        prefix=True,
    ),
    Exempt("admin/", "the Django admin: staff only, with its own rules (workspaces/tests/test_admin.py)", prefix=True),
    Exempt("api/auth/token/", "an API token for an email and password: the user's own"),
    Exempt("api/schema/", "the OpenAPI schema: describes the API, holds no data"),
    Exempt("api/docs/", "Swagger UI over the schema"),
]

if "debug_toolbar" in settings.INSTALLED_APPS:
    EXEMPT.append(Exempt("__debug__/", "the debug toolbar, with DEBUG on only", prefix=True))
