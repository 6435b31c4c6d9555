import secrets
from datetime import timedelta

from django.conf import settings
from django.core.validators import MinLengthValidator, RegexValidator
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from workspaces.roles import Role

INVITATION_LIFETIME = timedelta(days=7)
SLUG_VALIDATOR = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$",
    "Use 1 to 50 lowercase letters, digits and hyphens, not starting or ending with a hyphen.",
)


class CachePolicy(models.TextChoices):
    ALL = "all", "Cache every completion"
    DETERMINISTIC = "deterministic", "Only deterministic requests (temperature 0 or a fixed seed)"
    NONE = "none", "Cache nothing"


class WorkspaceQuerySet(models.QuerySet):
    def for_user(self, user):
        """The workspaces the user is a member of (nothing for anonymous users)."""
        from workspaces.permissions import workspace_ids

        return self.filter(pk__in=workspace_ids(user))

    def for_list(self, user):
        """My workspaces page: each with the user's role and member/document/assistant counts, in one query."""
        from django.db.models import OuterRef, Subquery

        role = Membership.objects.filter(workspace=OuterRef("pk"), user=user).values("role")[:1]
        qs = self.for_user(user).annotate(my_role=Subquery(role))
        return qs.annotate(**count_annotations()).order_by("archived", "name")


def count_annotations():
    """Counts of related objects as scalar subqueries, so joins never multiply rows."""
    from django.apps import apps
    from django.db.models import IntegerField, OuterRef, Subquery
    from django.db.models.functions import Coalesce

    def count_of(model, field="workspace"):
        sub = (
            model.objects.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk")).values("n")
        )
        return Coalesce(Subquery(sub, output_field=IntegerField()), 0)

    counts = {"member_count": count_of(Membership)}
    for label, model_name, name in [
        ("documents", "Document", "document_count"),
        ("assistants", "Assistant", "assistant_count"),
    ]:
        try:
            model = apps.get_model(label, model_name)
        except LookupError:
            continue
        counts[name] = count_of(model)
    return counts


class Workspace(models.Model):
    name = models.CharField(max_length=100, validators=[MinLengthValidator(1)])
    slug = models.SlugField(
        max_length=50,
        unique=True,
        validators=[SLUG_VALIDATOR],
        error_messages={"unique": "A workspace with this slug already exists. Choose another."},
    )
    description = models.TextField(blank=True, max_length=2000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    archived = models.BooleanField(default=False)
    cache_policy = models.CharField(max_length=16, choices=CachePolicy.choices, default=CachePolicy.ALL)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("workspaces:detail", args=[self.slug])


class Membership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workspace", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "user"],
                name="%(app_label)s_%(class)s_unique_member",
                violation_error_message="This person is already a member of the workspace.",
            ),
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="%(app_label)s_%(class)s_known_role"
            ),
        ]
        indexes = [
            # workspace_ids(user): every permission check starts here.
            models.Index(fields=["user", "workspace", "role"], name="ws_membership_user_ws"),
            # last-owner check: owners of one workspace.
            models.Index(fields=["workspace", "role"], name="ws_membership_ws_role"),
        ]

    def __str__(self):
        return f"{self.user} in {self.workspace} ({self.role})"


def new_invitation_token():
    return secrets.token_urlsafe(32)


def default_expiry():
    return timezone.now() + INVITATION_LIFETIME


class InvitationQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())


class Invitation(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token = models.CharField(max_length=64, unique=True, default=new_invitation_token, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(default=default_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # invitations page: a workspace's invitations, newest first.
            models.Index(fields=["workspace", "-created_at"], name="ws_invitation_ws_created"),
            # first sign-in: pending invitations for an email address.
            models.Index(
                fields=["email"],
                name="ws_invitation_pending_email",
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
            ),
        ]

    def __str__(self):
        return f"{self.email} to {self.workspace}"

    @property
    def state(self):
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    def get_accept_url(self):
        return reverse("workspaces:accept_invitation", args=[self.token])
