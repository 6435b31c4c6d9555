from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from corporate import views
from corporate.observability.metrics import metrics_view
from sso import views as sso_views

admin.site.site_header = settings.SITE_NAME + " administration"
admin.site.site_title = settings.SITE_NAME
admin.site.index_title = "Manage the workspace"

urlpatterns = [
    # The OpenAI-compatible API first: its cache hits are the hottest path.
    path("v1/", include("llmgateway.v1.urls")),
    path("", views.dashboard, name="dashboard"),
    path("health", views.health, name="health"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("metrics", metrics_view, name="metrics"),
    path("system/", views.system, name="system"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/password_reset/", views.PasswordResetView.as_view(), name="password_reset"),
    # Sign-out ends the identity provider's session too, after an SSO sign-in (sso.views.sign_out).
    path("accounts/logout/", sso_views.sign_out, name="logout"),
    path("accounts/color-scheme/", views.color_scheme, name="color_scheme"),
    path("accounts/sso/", include("sso.urls")),
    path("accounts/2fa/", include("twofactor.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/login/", views.admin_login),
    path("admin/", admin.site.urls),
    path("workspaces/", include("workspaces.urls")),
    path("documents/", include("documents.urls")),
    path("assistants/", include("assistants.urls")),
    path("gateway/", include("llmgateway.urls")),
    path("people/", include("people.urls")),
    path("", include("audit.urls")),
    path("api/", include("workspaces.api_urls")),
    path("api/", include("documents.api_urls")),
    path("api/", include("assistants.api_urls")),
    path("api/", include("llmgateway.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI: its start-up script is a separate file (no inline script);
    # the UI sets style attributes, so only this page allows inline styles. It answers
    # only GET and HEAD: DRF's OPTIONS metadata has no template to render into.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema", http_method_names=["get", "head"])
        ),
        name="api-docs",
    ),
]

handler400 = "corporate.views.bad_request"
handler403 = "corporate.views.permission_denied"
handler404 = "corporate.views.page_not_found"
handler500 = "corporate.views.server_error"

if "debug_toolbar" in settings.INSTALLED_APPS:
    urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
