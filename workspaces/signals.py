from django.contrib import messages
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from workspaces.services import accept_pending_for_new_user


@receiver(user_logged_in, dispatch_uid="workspaces.accept_invitations_on_first_sign_in")
def accept_invitations_on_first_sign_in(sender, request, user, **kwargs):
    joined = accept_pending_for_new_user(user)
    if joined and request is not None and hasattr(request, "_messages"):
        names = ", ".join(workspace.name for workspace in joined)
        messages.success(request, f"You joined {names} through your invitation.")


def _wire_page_cache():
    """Writes that change what the dashboard and the workspace list show (corporate.pagecache)."""
    from corporate import pagecache
    from workspaces.models import Invitation, Membership, Workspace

    pagecache.invalidate_on_write(Workspace, workspace=lambda w: w.pk)
    pagecache.invalidate_on_write(Membership, workspace=lambda m: m.workspace_id, user=lambda m: m.user_id)
    pagecache.invalidate_on_write(Invitation, workspace=lambda i: i.workspace_id, email=lambda i: i.email)


_wire_page_cache()
