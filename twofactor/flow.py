"""The second sign-in step: held between a right password and a right code."""

import time
from urllib.parse import urlencode

from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

from twofactor import policy

PENDING = "twofactor_pending"
MUST_ENROL = "twofactor_must_enrol"


def begin(request, user, next_url):
    """After a right password: a redirect to the second step when the account has a device, else None.

    Nobody is signed in yet; the session only remembers who passed the
    password and when. When the account must use a second factor but has
    none, the sign-in goes ahead and the session is marked so that every page
    leads to the enrolment page (twofactor.middleware).
    """
    if policy.is_enrolled(user):
        request.session[PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "at": int(time.time()),
            "next": next_url,
        }
        return redirect("twofactor:verify")
    request.session.pop(PENDING, None)
    return None


def after_password_login(request, user):
    if policy.is_required(user) and not policy.is_enrolled(user):
        request.session[MUST_ENROL] = True


def pending_user(request):
    """The account waiting for its second step, or None when there is none or it took too long."""
    from corporate.models import User

    pending = request.session.get(PENDING)
    if not isinstance(pending, dict):
        return None, None
    if time.time() - pending.get("at", 0) > settings.TWO_FACTOR_STEP_SECONDS:
        request.session.pop(PENDING, None)
        return None, None
    user = User.objects.filter(pk=pending.get("user"), is_active=True).first()
    return user, pending


def setup_url(next_url=""):
    """The enrolment page, coming back to `next_url` (a path with its own query string is kept whole)."""
    url = reverse("twofactor:setup")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
