"""REST API for workspaces, memberships and invitations.

The same rules as the pages: every queryset starts from the permission
module, outsiders get 404, a too-low role gets 403 with the reason, and the
rules about owners and invitations come from `services`.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from corporate.api import ID_PATTERN, StrictBooleanField, StrictCharField, StrictModelSerializer
from workspaces import permissions, services
from workspaces.models import Invitation, Membership, Workspace
from workspaces.roles import Role


def _raise(exc):
    """Turn a service error into the API's shape."""
    if isinstance(exc, DjangoPermissionDenied):
        raise exceptions.PermissionDenied(str(exc))
    if exc.field:
        raise exceptions.ValidationError({exc.field: [exc.message]})
    raise exceptions.ValidationError({"detail": exc.message})


class WorkspaceSerializer(StrictModelSerializer):
    my_role = serializers.CharField(read_only=True)
    member_count = serializers.IntegerField(read_only=True)
    document_count = serializers.SerializerMethodField()
    assistant_count = serializers.SerializerMethodField()
    archived = StrictBooleanField(required=False)

    class Meta:
        model = Workspace
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "archived",
            "created_at",
            "my_role",
            "member_count",
            "document_count",
            "assistant_count",
        ]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"name": {"allow_blank": False}}

    def get_document_count(self, obj) -> int | None:
        return getattr(obj, "document_count", None)

    def get_assistant_count(self, obj) -> int | None:
        return getattr(obj, "assistant_count", None)

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("Give the workspace a name.")
        return value.strip()

    def validate_slug(self, value):
        if self.instance is not None and value != self.instance.slug:
            raise serializers.ValidationError("The slug cannot be changed after creation.")
        return value


class MembershipSerializer(StrictModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.display_name", read_only=True)
    user_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user_id", "email", "name", "role", "joined_at"]
        read_only_fields = ["id", "user_id", "joined_at"]


class InvitationSerializer(StrictModelSerializer):
    state = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "state", "created_at", "expires_at", "accepted_at"]
        read_only_fields = ["id", "state", "created_at", "expires_at", "accepted_at"]


class WorkspaceViewSet(viewsets.ModelViewSet):
    """Workspaces the caller belongs to. Anyone signed in may create one and becomes its owner."""

    serializer_class = WorkspaceSerializer
    lookup_field = "slug"
    lookup_value_regex = "[a-z0-9-]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Workspace.objects.none()
        return Workspace.objects.for_list(self.request.user)

    def get_object(self):
        workspace = super().get_object()  # 404 for outsiders: the queryset is scoped
        needed = {"GET": "view", "PUT": "manage_settings", "PATCH": "manage_settings", "DELETE": "delete_workspace"}
        reason = permissions.why_not(self.request.user, needed.get(self.request.method, "view"), workspace)
        if reason:
            raise exceptions.PermissionDenied(reason)
        return workspace

    def create(self, request, *args, **kwargs):
        permissions.check_person(request.user, "create a workspace")
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            workspace = services.create_workspace(
                self.request.user, name=data["name"], slug=data["slug"], description=data.get("description", "")
            )
        except services.WorkspaceError as exc:
            _raise(exc)
        workspace.my_role = Role.OWNER
        workspace.member_count = 1
        serializer.instance = workspace

    def perform_update(self, serializer):
        fields = {k: v for k, v in serializer.validated_data.items() if k in {"name", "description", "archived"}}
        services.update_workspace(self.request.user, serializer.instance, **fields)

    def perform_destroy(self, instance):
        try:
            services.delete_workspace(self.request.user, instance, instance.slug)
        except services.WorkspaceError as exc:
            _raise(exc)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def leave(self, request, slug=None):
        workspace = get_object_or_404(Workspace.objects.for_user(request.user), slug=slug)
        permissions.check_person(request.user, "leave a workspace")
        try:
            services.leave(request.user, workspace)
        except services.WorkspaceError as exc:
            _raise(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkspaceChildMixin:
    """Viewsets nested under /workspaces/<slug>/: the workspace comes from the permission module."""

    read_action = "view"
    write_action = "manage_members"

    def workspace(self):
        if not hasattr(self, "_workspace"):
            action = self.read_action if self.request.method in ("GET", "HEAD", "OPTIONS") else self.write_action
            self._workspace = permissions.get_workspace_for(self.request.user, self.kwargs["workspace_slug"], action)
        return self._workspace


class MembershipViewSet(
    WorkspaceChildMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Members of a workspace. Admins change roles and remove members; only owners touch owners."""

    lookup_value_regex = ID_PATTERN  # ASCII digits: other scripts' digits are not ids

    serializer_class = MembershipSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return Membership.objects.filter(workspace=self.workspace()).select_related("user").order_by("user__email")

    def perform_update(self, serializer):
        role = serializer.validated_data.get("role", serializer.instance.role)
        try:
            services.change_role(self.request.user, serializer.instance, role)
        except (services.WorkspaceError, DjangoPermissionDenied) as exc:
            _raise(exc)

    def perform_destroy(self, instance):
        try:
            services.remove_member(self.request.user, instance)
        except (services.WorkspaceError, DjangoPermissionDenied) as exc:
            _raise(exc)


class InvitationViewSet(
    WorkspaceChildMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations of a workspace (admins). DELETE revokes; POST …/resend/ sends again with a new link."""

    lookup_value_regex = ID_PATTERN  # ASCII digits: other scripts' digits are not ids

    serializer_class = InvitationSerializer
    read_action = "manage_members"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invitation.objects.none()
        return Invitation.objects.filter(workspace=self.workspace())

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = services.invite(
                self.request.user,
                self.workspace(),
                data["email"],
                data.get("role", Role.MEMBER),
                base_url=self.request.build_absolute_uri("/"),
            )
        except (services.WorkspaceError, DjangoPermissionDenied) as exc:
            _raise(exc)

    def perform_destroy(self, instance):
        try:
            services.revoke(self.request.user, instance)
        except (services.WorkspaceError, DjangoPermissionDenied) as exc:
            _raise(exc)

    def destroy(self, request, *args, **kwargs):
        self.perform_destroy(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def resend(self, request, workspace_slug=None, pk=None):
        invitation = self.get_object()
        try:
            services.resend(request.user, invitation, base_url=request.build_absolute_uri("/"))
        except (services.WorkspaceError, DjangoPermissionDenied) as exc:
            _raise(exc)
        return Response(self.get_serializer(invitation).data)


class AcceptInvitationSerializer(serializers.Serializer):
    token = StrictCharField(max_length=64)


class InvitationAcceptViewSet(viewsets.ViewSet):
    """Accept an invitation addressed to the caller's email."""

    serializer_class = AcceptInvitationSerializer

    @extend_schema(request=AcceptInvitationSerializer, responses={201: MembershipSerializer})
    def create(self, request):
        permissions.check_person(request.user, "accept an invitation")
        serializer = AcceptInvitationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation = Invitation.objects.filter(token=serializer.validated_data["token"]).select_related("workspace")
        invitation = invitation.first()
        if invitation is None:
            raise exceptions.NotFound("No such invitation.")
        try:
            membership = services.accept(request.user, invitation)
        except (services.WorkspaceError, DjangoPermissionDenied) as exc:
            _raise(exc)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)
