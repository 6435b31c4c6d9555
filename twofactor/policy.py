"""Who must use a second factor, which devices a user has, and checking a code.

Devices are django-otp's: one TOTP device (an authenticator app) and one
static device holding single-use recovery codes. Accounts that sign in
through single sign-on are left to their identity provider's own factors.
"""

import secrets

from django.conf import settings
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from twofactor.models import Requirement, TwoFactorPolicy

RECOVERY_CODES = 10
STRICTNESS = {Requirement.NONE: 0, Requirement.STAFF: 1, Requirement.ALL: 2}
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def requirement():
    """The stricter of TWO_FACTOR_REQUIRED and the admin's policy."""
    stored = TwoFactorPolicy.objects.filter(pk=1).values_list("required", flat=True).first() or Requirement.NONE
    return max(settings.TWO_FACTOR_REQUIRED, stored, key=lambda value: STRICTNESS[value])


def is_required(user):
    needed = requirement()
    return needed == Requirement.ALL or (needed == Requirement.STAFF and (user.is_staff or user.is_superuser))


def totp_device(user, confirmed=True):
    return TOTPDevice.objects.filter(user=user, confirmed=confirmed).first()


def is_enrolled(user):
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def verify(user, code):
    """The device that accepts this code (TOTP, else a recovery code, used up), or None."""
    code = "".join(str(code or "").split()).replace("-", "").lower()
    if not code or len(code) > 20:
        return None
    if code.isascii() and code.isdigit() and len(code) == 6:
        device = totp_device(user)
        if device and device.verify_token(code):
            return device
        return None
    for device in StaticDevice.objects.filter(user=user, confirmed=True):
        if device.verify_token(code):
            return device
    return None


def new_recovery_codes(user):
    """Replace the user's recovery codes with fresh ones; the codes, to show once."""
    device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_NAME, defaults={"confirmed": True})
    device.token_set.all().delete()
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def remaining_recovery_codes(user):
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def remove_all(user):
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
