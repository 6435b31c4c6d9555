from django.urls import path

from assistants import conversations, views

app_name = "assistants"
urlpatterns = [
    path("", views.home, name="home"),
    path("<slug:slug>/", views.assistant_list, name="list"),
    path("<slug:slug>/new/", views.assistant_create, name="create"),
    path("<slug:slug>/try/", views.assistant_try, name="try_new"),
    path("<slug:slug>/usage/", views.usage, name="usage"),
    path("<slug:slug>/messages/<int:mid>/feedback/", views.feedback, name="feedback"),
    path("<slug:slug>/messages/<int:mid>/show/", views.show_version, name="show_version"),
    path("<slug:slug>/messages/<int:mid>/sources/<int:n>/", views.citation, name="citation"),
    path("<slug:slug>/<int:pk>/", views.chat, name="chat"),
    path("<slug:slug>/<int:pk>/edit/", views.assistant_edit, name="edit"),
    path("<slug:slug>/<int:pk>/try/", views.assistant_try, name="try"),
    path("<slug:slug>/<int:pk>/archive/", views.assistant_archive, name="archive"),
    path("<slug:slug>/<int:pk>/delete/", views.assistant_delete, name="delete"),
    path("<slug:slug>/<int:pk>/ask/", views.ask, name="ask"),
    path("<slug:slug>/<int:pk>/c/<int:cid>/", views.conversation_view, name="conversation"),
    path("<slug:slug>/<int:pk>/c/<int:cid>/delete/", conversations.delete, name="conversation_delete"),
    path("<slug:slug>/<int:pk>/c/<int:cid>/rename/", conversations.rename, name="conversation_rename"),
    path("<slug:slug>/<int:pk>/c/<int:cid>/pin/", conversations.pin, name="conversation_pin"),
    path("<slug:slug>/<int:pk>/c/<int:cid>/export/<str:fmt>/", conversations.export, name="conversation_export"),
]
