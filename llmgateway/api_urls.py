"""Gateway REST API, mounted at /api/."""

from django.urls import path

from llmgateway import api

urlpatterns = [
    path("gateway/cache/", api.OverallCacheStats.as_view(), name="gateway-cache-stats"),
    path("gateway/<slug:slug>/keys/", api.ApiKeyList.as_view(), name="gateway-keys"),
    path("gateway/<slug:slug>/keys/<int:pk>/", api.ApiKeyDetail.as_view(), name="gateway-key"),
    path("gateway/<slug:slug>/models/", api.ModelList.as_view(), name="gateway-models"),
    path("gateway/<slug:slug>/cache/", api.WorkspaceCacheStats.as_view(), name="gateway-workspace-cache-stats"),
    path("gateway/<slug:slug>/usage/", api.UsageList.as_view(), name="gateway-usage"),
    path("gateway/<slug:slug>/usage/summary/", api.UsageSummary.as_view(), name="gateway-usage-summary"),
    path("gateway/<slug:slug>/usage/quota/", api.Quota.as_view(), name="gateway-usage-quota"),
    path(
        "gateway/<slug:slug>/limits/workspace/",
        api.LimitDetail.as_view(),
        {"kind": "workspace"},
        name="gateway-workspace-limits",
    ),
    path(
        "gateway/<slug:slug>/limits/members/",
        api.LimitDetail.as_view(),
        {"kind": "members"},
        name="gateway-member-limits",
    ),
    path(
        "gateway/<slug:slug>/limits/users/<int:pk>/",
        api.LimitDetail.as_view(),
        {"kind": "user"},
        name="gateway-user-limits",
    ),
    path(
        "gateway/<slug:slug>/limits/keys/<int:pk>/",
        api.LimitDetail.as_view(),
        {"kind": "key"},
        name="gateway-key-limits",
    ),
]
