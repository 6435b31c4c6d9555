from django.urls import path

from sso import views

app_name = "sso"

urlpatterns = [
    path("<slug:slug>/login/", views.sso_login, name="login"),
    path("<slug:slug>/callback/", views.sso_callback, name="callback"),
]
