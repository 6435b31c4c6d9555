from django.urls import path

from workspaces import views

app_name = "workspaces"
urlpatterns = [
    path("", views.workspace_list, name="list"),
    path("new/", views.workspace_create, name="create"),
    path("invitations/<str:token>/", views.invitation_accept, name="accept_invitation"),
    path("<slug:slug>/", views.workspace_detail, name="detail"),
    path("<slug:slug>/settings/", views.workspace_settings, name="settings"),
    path("<slug:slug>/archive/", views.workspace_archive, name="archive"),
    path("<slug:slug>/delete/", views.workspace_delete, name="delete"),
    path("<slug:slug>/members/", views.workspace_members, name="members"),
    path("<slug:slug>/members/<int:pk>/role/", views.member_role, name="member_role"),
    path("<slug:slug>/members/<int:pk>/remove/", views.member_remove, name="member_remove"),
    path("<slug:slug>/leave/", views.workspace_leave, name="leave"),
    path("<slug:slug>/invitations/", views.invitation_create, name="invite"),
    path("<slug:slug>/invitations/<int:pk>/resend/", views.invitation_resend, name="invitation_resend"),
    path("<slug:slug>/invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
]
