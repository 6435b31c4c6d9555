"""Gateway REST API, mounted at /api/."""

from django.urls import path

from llmgateway import api

urlpatterns = [
    path("gateway/cache/", api.OverallCacheStats.as_view(), name="gateway-cache-stats"),
    path("gateway/<slug:slug>/keys/", api.ApiKeyList.as_view(), name="gateway-keys"),
    path("gateway/<slug:slug>/keys/<int:pk>/", api.ApiKeyDetail.as_view(), name="gateway-key"),
    path("gateway/<slug:slug>/models/", api.ModelList.as_view(), name="gateway-models"),
    path("gateway/<slug:slug>/cache/", api.WorkspaceCacheStats.as_view(), name="gateway-workspace-cache-stats"),
]
