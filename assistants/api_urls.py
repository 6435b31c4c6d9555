from django.urls import include, path
from rest_framework.routers import DefaultRouter

from assistants import api

router = DefaultRouter()
router.include_root_view = False
router.register("assistants", api.AssistantViewSet, basename="assistant")
router.register("conversations", api.ConversationViewSet, basename="conversation")
router.register("messages", api.MessageFeedbackViewSet, basename="message")

urlpatterns = [path("", include(router.urls))]
