"""Gateway pages, mounted at /gateway/."""

from django.urls import path

from llmgateway import views

app_name = "llmgateway"
urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:slug>/", views.workspace_home, name="workspace"),
    path("<slug:slug>/models/", views.models_page, name="models"),
    path("<slug:slug>/keys/", views.keys, name="keys"),
    path("<slug:slug>/keys/<int:pk>/revoke/", views.revoke_key, name="revoke_key"),
    path("<slug:slug>/cache/", views.cache_page, name="cache"),
    path("<slug:slug>/cache/clear/", views.cache_clear, name="cache_clear"),
]
