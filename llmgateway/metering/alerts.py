"""Budget alerts: one email to the workspace's admins when a budget passes 80%, and one at 100%, per period."""

import logging

from django.conf import settings
from django.core.mail import send_mail

from llmgateway.cache import deferred
from llmgateway.cache.store import get_store, make_key
from llmgateway.metering.limits import SCOPE_WORDS, periods
from llmgateway.metering.money import micro_dollars_text

log = logging.getLogger("llmgateway.metering")

FIRST_THRESHOLD = 0.8
THRESHOLDS = (1.0, 0.8)


def maybe_send(workspace_id, scope, kind, spent, budget):
    """Send the alert for the highest threshold passed, once per scope, budget period and threshold."""
    day, month, _, _ = periods()
    for threshold in THRESHOLDS:
        if spent < budget * threshold:
            continue
        key = make_key(f"gw:alert:{scope.kind}:{scope.ident}:{kind}:{day if kind == 'day' else month}:{threshold}")
        if not get_store().add(key, b"1", 40 * 86400):
            return
        deferred.defer(_send_safely, workspace_id, scope, kind, spent, budget, threshold)
        return


def _send_safely(*args):
    try:
        _send(*args)
    except Exception:  # an alert must never fail a completion
        log.exception("budget alert not sent")


def _send(workspace_id, scope, kind, spent, budget, threshold):
    from workspaces.models import Membership, Workspace
    from workspaces.roles import Role

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return
    emails = list(
        Membership.objects.filter(workspace=workspace, role__in=[Role.ADMIN, Role.OWNER], user__is_active=True)
        .values_list("user__email", flat=True)
        .order_by("user__email")
    )
    if not emails:
        return
    period = "today" if kind == "day" else "this month"
    what = SCOPE_WORDS[scope.kind].replace("your account", "one person's account")
    if scope.kind == "user":
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(pk=int(scope.ident.split(":")[1])).first()
        what = f"{user.email} in this workspace" if user else what
    elif scope.kind == "key":
        from llmgateway.models import ApiKey

        key = ApiKey.objects.filter(pk=int(scope.ident)).first()
        what = f"the API key {key.name!r}" if key else what
    state = "is used up" if threshold >= 1 else f"is {int(threshold * 100)}% used"
    subject = f"[{settings.SITE_NAME}] {workspace.name}: the {'daily' if kind == 'day' else 'monthly'} budget {state}"
    body = (
        f"The {'daily' if kind == 'day' else 'monthly'} budget of {what} in the workspace {workspace.name!r} {state}: "
        f"${micro_dollars_text(spent)} of ${micro_dollars_text(budget)} spent {period}.\n\n"
        + (
            "Requests that would spend more are refused until the budget resets.\n"
            if threshold >= 1
            else "Requests are refused once it is used up.\n"
        )
        + "\nSee and change the limits on the workspace's Usage page.\n"
    )
    send_mail(subject, body, None, emails)
