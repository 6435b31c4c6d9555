from django.urls import path

from documents import views

app_name = "documents"
urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:slug>/", views.document_list, name="list"),
    path("<slug:slug>/upload/", views.upload, name="upload"),
    path("<slug:slug>/search/", views.search, name="search"),
    path("<slug:slug>/<int:pk>/", views.detail, name="detail"),
    path("<slug:slug>/<int:pk>/status/", views.status, name="status"),
    path("<slug:slug>/<int:pk>/download/", views.download, name="download"),
    path("<slug:slug>/<int:pk>/delete/", views.delete, name="delete"),
    path("<slug:slug>/<int:pk>/rename/", views.rename, name="rename"),
    path("<slug:slug>/<int:pk>/reprocess/", views.reprocess, name="reprocess"),
    path("<slug:slug>/<int:pk>/cancel/", views.cancel, name="cancel"),
]
