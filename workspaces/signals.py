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
