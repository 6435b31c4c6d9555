from django.urls import path

from people import views

app_name = "people"
urlpatterns = [
    path("", views.user_list, name="list"),
    path("new/", views.user_create, name="create"),
    path("<int:pk>/", views.user_detail, name="detail"),
    path("<int:pk>/deactivate/", views.user_deactivate, name="deactivate"),
    path("<int:pk>/reactivate/", views.user_reactivate, name="reactivate"),
    path("<int:pk>/password-reset/", views.user_password_reset, name="password_reset"),
]
