"""Changes to workspaces, memberships and invitations, with their rules.

Pages, the API, the admin and the management commands all call these
functions, so a rule (the last owner stays, an admin cannot make owners, an
invitation is used once) lives in one place. Each function assumes the
caller has already fetched the workspace through the permission module; it
checks the finer rules that depend on the people involved.
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

import audit
from workspaces import permissions
from workspaces.models import INVITATION_LIFETIME, Invitation, Membership, Workspace, new_invitation_token
from workspaces.roles import Role, at_least


class WorkspaceError(Exception):
    """A request that breaks a rule; `field` names the input at fault, if any."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


def create_workspace(user, *, name, slug, description=""):
    with transaction.atomic():
        try:
            workspace = Workspace.objects.create(name=name, slug=slug, description=description, created_by=user)
        except IntegrityError:
            raise WorkspaceError("A workspace with this slug already exists. Choose another.", field="slug") from None
        Membership.objects.create(workspace=workspace, user=user, role=Role.OWNER)
    permissions.forget(user)
    return workspace


def _owner_count(workspace):
    return Membership.objects.filter(workspace=workspace, role=Role.OWNER).count()


def _ensure_not_last_owner(membership, message):
    if membership.role == Role.OWNER and _owner_count(membership.workspace) <= 1:
        raise WorkspaceError(message)


def _check_may_manage(actor, membership, new_role=None):
    """Admins manage viewers, members and admins; only owners touch owners."""
    workspace = membership.workspace
    permissions.check(actor, "manage_members", workspace)
    touches_owner = membership.role == Role.OWNER or new_role == Role.OWNER
    if touches_owner and not permissions.can(actor, "manage_owners", workspace):
        raise PermissionDenied("Only an owner can make someone an owner or change an owner's role.")


def change_role(actor, membership, role):
    if role not in Role.values:
        raise WorkspaceError(f"Unknown role {role!r}. Choose one of: {', '.join(Role.values)}.", field="role")
    _check_may_manage(actor, membership, role)
    if role == membership.role:
        return membership
    with transaction.atomic():
        # Lock the workspace's owners so two demotions cannot both pass the check.
        list(Membership.objects.select_for_update().filter(workspace=membership.workspace, role=Role.OWNER))
        if role != Role.OWNER:
            _ensure_not_last_owner(
                membership, "A workspace must keep at least one owner. Make someone else an owner first."
            )
        membership.role = role
        membership.save(update_fields=["role"])
    permissions.forget(membership.user)
    return membership


def remove_member(actor, membership):
    if actor.pk == membership.user_id:
        return leave(actor, membership.workspace)
    _check_may_manage(actor, membership)
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(workspace=membership.workspace, role=Role.OWNER))
        _ensure_not_last_owner(membership, "The last owner cannot be removed. Make someone else an owner first.")
        membership.delete()


def leave(user, workspace):
    membership = Membership.objects.filter(workspace=workspace, user=user).select_related("workspace").first()
    if membership is None:
        raise WorkspaceError("You are not a member of this workspace.")
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(workspace=workspace, role=Role.OWNER))
        _ensure_not_last_owner(
            membership, "You are the last owner. Make someone else an owner, or delete the workspace, before leaving."
        )
        membership.delete()
    permissions.forget(user)


def update_workspace(actor, workspace, **fields):
    permissions.check(actor, "manage_settings", workspace)
    if (
        "archived" in fields
        and bool(fields["archived"]) != workspace.archived
        and permissions.acts_through_a_key(actor)
    ):
        # Archiving stops the workspace's completions: a key must not switch itself back on.
        raise PermissionDenied(
            "An API key cannot archive or restore its workspace; sign in, or use your own API token."
        )
    for name, value in fields.items():
        setattr(workspace, name, value)
    workspace.save(update_fields=list(fields))
    return workspace


def set_archived(actor, workspace, archived):
    return update_workspace(actor, workspace, archived=bool(archived))


def delete_workspace(actor, workspace, confirmation):
    permissions.check(actor, "delete_workspace", workspace)
    if confirmation != workspace.slug:
        raise WorkspaceError(f"Type the workspace's short name, {workspace.slug}, to confirm.", field="confirm")
    workspace.delete()
    permissions.forget(actor)


# Invitations


def invite(actor, workspace, email, role=Role.MEMBER, *, base_url=None):
    permissions.check(actor, "manage_members", workspace)
    email = email.strip().lower()
    if role not in Role.values:
        raise WorkspaceError(f"Unknown role {role!r}. Choose one of: {', '.join(Role.values)}.", field="role")
    if not at_least(permissions.role_in(actor, workspace), role):
        raise PermissionDenied("You cannot invite someone with a higher role than your own.")
    if role == Role.OWNER and not permissions.can(actor, "manage_owners", workspace):
        raise PermissionDenied("Only an owner can invite another owner.")
    if Membership.objects.filter(workspace=workspace, user__email__iexact=email).exists():
        raise WorkspaceError(f"{email} is already a member of this workspace.", field="email")
    if Invitation.objects.pending().filter(workspace=workspace, email__iexact=email).exists():
        raise WorkspaceError(
            f"{email} already has a pending invitation. Resend it from the list instead.", field="email"
        )
    invitation = Invitation.objects.create(workspace=workspace, email=email, role=role, invited_by=actor)
    send_invitation(invitation, base_url)
    return invitation


def send_invitation(invitation, base_url=None):
    """Email the invitation. Links use the address the inviter used (base_url), else SITE_URL."""
    context = {
        "invitation": invitation,
        "workspace": invitation.workspace,
        "inviter": invitation.invited_by,
        "accept_url": (base_url or settings.SITE_URL or "http://127.0.0.1:8000").rstrip("/")
        + invitation.get_accept_url(),
        "SITE_NAME": settings.SITE_NAME,
    }
    send_mail(
        subject=f"You are invited to {invitation.workspace.name} on {settings.SITE_NAME}",
        message=render_to_string("workspaces/email/invitation.txt", context),
        from_email=None,
        recipient_list=[invitation.email],
    )
    invitation.sent_at = timezone.now()
    invitation.save(update_fields=["sent_at"])


def resend(actor, invitation, *, base_url=None):
    permissions.check(actor, "manage_members", invitation.workspace)
    if invitation.state in {"accepted", "revoked"}:
        raise WorkspaceError(f"This invitation was {invitation.state}; send a new one instead.")
    # A fresh token and expiry: an old link that leaked stops working.
    invitation.token = new_invitation_token()
    invitation.expires_at = timezone.now() + INVITATION_LIFETIME
    invitation.save(update_fields=["token", "expires_at"])
    send_invitation(invitation, base_url)
    audit.record(actor, "invitation.resend", obj=invitation, details={"expires_at": invitation.expires_at})
    return invitation


def revoke(actor, invitation):
    permissions.check(actor, "manage_members", invitation.workspace)
    if invitation.state == "accepted":
        raise WorkspaceError("This invitation was already accepted; remove the member instead.")
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


INVITATION_PROBLEMS = {
    "accepted": "This invitation has already been used.",
    "revoked": "This invitation was revoked by a workspace admin.",
    "expired": "This invitation has expired. Ask a workspace admin to send a new one.",
}
WRONG_EMAIL = "This invitation was sent to another email address. Sign in with that address to accept it."


def accept(user, invitation):
    """Join the workspace the invitation is for; refuses a used, revoked, expired or misaddressed one."""
    state = invitation.state
    if state != "pending":
        raise WorkspaceError(INVITATION_PROBLEMS[state])
    if invitation.email.lower() != user.email.lower():
        raise PermissionDenied(WRONG_EMAIL)
    with transaction.atomic():
        updated = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
            accepted_at=timezone.now(), accepted_by=user
        )
        if not updated:
            raise WorkspaceError("This invitation has already been used.")
        membership, created = Membership.objects.get_or_create(
            workspace=invitation.workspace, user=user, defaults={"role": invitation.role}
        )
        audit.record(user, "invitation.accept", obj=invitation, details={"role": invitation.role})
    permissions.forget(user)
    return membership


def accept_pending_for_new_user(user):
    """On a first sign-in (no workspace yet), join every workspace the email was invited to."""
    if Membership.objects.filter(user=user).exists():
        return []
    joined = []
    for invitation in Invitation.objects.pending().filter(email__iexact=user.email).select_related("workspace"):
        if invitation.email.lower() != user.email.lower():
            continue  # PostgreSQL's upper() folds more ('ı' is 'I'): another address, which accept() refuses
        joined.append(accept(user, invitation).workspace)
    return joined


# Memberships set by the company directory (single sign-on group mappings)


def set_role_from_directory(user, workspace, role):
    """Give `user` exactly `role` in `workspace` (joining it if needed), as the directory's groups say.

    No acting person: the rule it keeps is that a workspace keeps an owner,
    so the last owner is never demoted (their role stays, and False is
    returned). True when the user now has the role.
    """
    if role not in Role.values:
        raise WorkspaceError(f"Unknown role {role!r}. Choose one of: {', '.join(Role.values)}.", field="role")
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(workspace=workspace, role=Role.OWNER))
        membership = Membership.objects.filter(workspace=workspace, user=user).first()
        if membership is None:
            Membership.objects.create(workspace=workspace, user=user, role=role)
        elif membership.role != role:
            if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(workspace) <= 1:
                return False
            membership.role = role
            membership.save(update_fields=["role"])
    permissions.forget(user)
    return True


def remove_from_directory(user, workspace):
    """Take `user` out of `workspace` because the directory no longer puts them there; never the last owner."""
    with transaction.atomic():
        list(Membership.objects.select_for_update().filter(workspace=workspace, role=Role.OWNER))
        membership = Membership.objects.filter(workspace=workspace, user=user).first()
        if membership is None:
            return True
        if membership.role == Role.OWNER and _owner_count(workspace) <= 1:
            return False
        membership.delete()
    permissions.forget(user)
    return True
