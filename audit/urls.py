from django.urls import path

from audit import views

app_name = "audit"
urlpatterns = [
    path("audit/", views.site_log, name="site"),
    path("audit/export/", views.site_export, name="site_export"),
    path("workspaces/<slug:slug>/audit/", views.workspace_log, name="workspace"),
    path("workspaces/<slug:slug>/audit/export/", views.workspace_export, name="workspace_export"),
]
