"""Sign-ins, lockouts, account changes and Django admin actions, recorded as they happen."""

from axes.signals import user_locked_out
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save
from django.dispatch import receiver

import audit
from audit.tracking import track
from corporate.models import User


@receiver(user_logged_in, dispatch_uid="audit.login")
def record_login(sender, request, user, **kwargs):
    backend = getattr(user, "backend", "") or ""
    audit.record(user, "user.login", obj=user, request=request, details={"backend": backend.rsplit(".", 1)[-1]})


@receiver(user_logged_out, dispatch_uid="audit.logout")
def record_logout(sender, request, user, **kwargs):
    if user is not None:
        audit.record(user, "user.logout", obj=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit.login_failed")
def record_login_failure(sender, credentials, request=None, **kwargs):
    # Only the account name that was tried: Django has already masked the password in `credentials`.
    username = str((credentials or {}).get("username") or (credentials or {}).get("email") or "")
    audit.record(username or None, "user.login_failed", request=request)


@receiver(user_locked_out, dispatch_uid="audit.locked_out")
def record_lockout(sender, request, username, ip_address, **kwargs):
    audit.record(str(username or "") or None, "user.locked_out", request=request)


ADMIN_VERBS = {ADDITION: "add", CHANGE: "change", DELETION: "delete"}


@receiver(post_save, sender=LogEntry, dispatch_uid="audit.admin_action")
def record_admin_action(sender, instance, created, raw=False, **kwargs):
    if not created or raw:
        return
    model = instance.content_type.model if instance.content_type_id else ""
    audit.record(
        instance.user,
        f"admin.{ADMIN_VERBS.get(instance.action_flag, 'action')}",
        obj=(model, instance.object_id or "", instance.object_repr or ""),
        details={"message": instance.get_change_message()},
    )


def _user_action(verb, user, changes):
    if verb != "update":
        return None
    if "is_active" in changes:
        return "user.reactivate" if user.is_active else "user.deactivate"
    if set(changes) == {"password"}:
        return "user.password_change"
    return None


track(
    User,
    fields=["email", "full_name", "is_active", "is_staff", "is_superuser"],
    secret=["password"],
    action=_user_action,
)
