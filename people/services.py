"""Staff managing accounts: create, deactivate, reactivate, send a password mail.

Deactivation keeps the account's existing semantics (corporate/signals.py):
saving it inactive bumps the session generation, so every session ends for
good, and drops its API tokens and its workspace API keys. Every change here
is in the audit log: account changes through the user model's tracking,
mails through explicit events.
"""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

import audit
from corporate.models import User


class PeopleError(Exception):
    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


def _check_may_manage(actor, user):
    if user.is_superuser and not actor.is_superuser:
        raise PeopleError("Only a superuser can change a superuser's account.")


def set_password_url(user, base_url=None):
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return (base_url or settings.SITE_URL or "http://127.0.0.1:8000").rstrip("/") + path


def _mail(user, template, subject, base_url):
    context = {
        "user": user,
        "url": set_password_url(user, base_url),
        "SITE_NAME": settings.SITE_NAME,
        "valid_hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600),
    }
    send_mail(subject, render_to_string(template, context), None, [user.email])


def create_user(actor, *, email, full_name="", password=None, base_url=None):
    """A new account; without a password it gets a mail with a link to choose one."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise PeopleError("A user with that email already exists.", field="email")
    try:
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password or None, full_name=full_name.strip())
    except IntegrityError:
        raise PeopleError("A user with that email already exists.", field="email") from None
    if not password:
        _mail(user, "people/email/welcome.txt", f"Your account on {settings.SITE_NAME}", base_url)
        audit.record(actor, "user.welcome_sent", obj=user)
    return user


def deactivate(actor, user):
    if user.pk == actor.pk:
        raise PeopleError("You cannot deactivate your own account.")
    _check_may_manage(actor, user)
    if not user.is_active:
        return user
    user.is_active = False
    user.save()  # signals: the session generation goes up, tokens and keys are dropped
    return user


def reactivate(actor, user):
    _check_may_manage(actor, user)
    if user.is_active:
        return user
    user.is_active = True
    user.save()
    return user


def send_password_reset(actor, user, base_url=None):
    _check_may_manage(actor, user)
    if not user.is_active:
        raise PeopleError("This account is deactivated. Reactivate it before sending a password mail.")
    _mail(user, "people/email/password_reset.txt", f"Reset your password on {settings.SITE_NAME}", base_url)
    audit.record(actor, "user.password_reset_sent", obj=user)
