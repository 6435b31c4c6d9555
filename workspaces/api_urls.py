from django.urls import include, path
from rest_framework.routers import DefaultRouter

from corporate.api import ObtainTokenView
from workspaces import api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("workspaces", api.WorkspaceViewSet, basename="workspace")
router.register(r"workspaces/(?P<workspace_slug>[a-z0-9-]+)/members", api.MembershipViewSet, basename="membership")
router.register(r"workspaces/(?P<workspace_slug>[a-z0-9-]+)/invitations", api.InvitationViewSet, basename="invitation")
router.register("invitations/accept", api.InvitationAcceptViewSet, basename="invitation-accept")

urlpatterns = [
    path("auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("", include(router.urls)),
]
