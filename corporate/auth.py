"""Small pieces of sign-in shared by settings and views: who is asking, and how often they may try."""

import hashlib
import logging

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.timesince import timesince
from ipware.ip import get_client_ip

log = logging.getLogger(__name__)

RESET_WINDOW = 60 * 60  # seconds; the password-reset limits are per hour


def client_address(request):
    """The address of the client, as the sign-in lockout and the reset limits count it.

    Each of the PROXY_COUNT proxies in front of the app appends the address it
    saw to X-Forwarded-For, so the client is the PROXY_COUNT-th entry from the
    right; whatever a client wrote into the header itself stays left of it and
    is never believed. Without proxies, or when the header is shorter than the
    proxies would make it, the socket peer (REMOTE_ADDR).
    """
    proxies = settings.PROXY_COUNT
    if proxies:
        address, _routable = get_client_ip(
            request,
            proxy_order="left-most",
            # ipware counts the entries after the client's, and the nearest proxy writes the client's own.
            proxy_count=proxies - 1,
            request_header_order=["HTTP_X_FORWARDED_FOR"],
            strict=False,
        )
        if address:
            return address
    return request.META.get("REMOTE_ADDR", "")


def account_key(identifier):
    """An email address as the limits count it: one key for every spelling that finds the same account.

    Sign-in looks the account up with `iexact`, which PostgreSQL compares as
    upper(): there 'ı' and 'ſ' find the 'i' and 's' of an address, which
    lower() keeps apart. The key goes through upper() first, then back to
    lowercase, so an ordinary address keeps its usual key.
    """
    return identifier.strip().upper().lower()


def axes_username(request, credentials):
    """The account a sign-in attempt is for, as the lockout counts it: the email's account_key()."""
    username = (credentials or {}).get("username") or ""
    if not username and request is not None:
        username = request.POST.get("username", "")
    return account_key(username)


def axes_failure_limit(request, credentials):
    """Failures allowed for this account from this address before axes pauses it (AXES_FAILURE_LIMIT).

    axes counts failures per account and address (AXES_LOCKOUT_PARAMETERS);
    this adds the two wider limits: once the account has failed
    LOGIN_ACCOUNT_FAILURE_LIMIT times from any addresses, or the address
    LOGIN_ADDRESS_FAILURE_LIMIT times for any accounts, within the cool-off,
    no failure at all is allowed, so every address or every account is paused.
    Reads axes's database records (its default handler): one query.
    """
    from axes.attempts import get_cool_off_threshold
    from axes.models import AccessAttempt

    username = axes_username(request, credentials)
    address = getattr(request, "axes_ip_address", None) or client_address(request)
    account, from_address = Q(username=username), Q(ip_address=address)
    recent = AccessAttempt.objects.filter(account | from_address, attempt_time__gte=get_cool_off_threshold(request))
    totals = recent.aggregate(
        account=Sum("failures_since_start", filter=account), address=Sum("failures_since_start", filter=from_address)
    )
    if (totals["account"] or 0) >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
        return 0
    if (totals["address"] or 0) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
        return 0
    return settings.LOGIN_FAILURE_LIMIT


def cooloff_words():
    """How long a sign-in lockout lasts, in words: "15 minutes", "1 hour, 30 minutes"."""
    now = timezone.now()
    return timesince(now - settings.AXES_COOLOFF_TIME, now).replace("\xa0", " ")


def _count(key, window):
    """One more hit on a counter that expires `window` seconds after its first; the new count.

    In the default cache, so Redis in production: every worker counts the same.
    When the cache is down (django-redis ignores its errors) the count is 0.
    """
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key) or 0
    except ValueError:  # expired between the two calls: this hit starts a new window
        cache.add(key, 1, timeout=window)
        return 1


def password_reset_limit(request, email):
    """Count a password-reset request; the limit it went over ("address" or "account"), or None.

    The address is counted first, so a client over its limit does not use up
    the allowance of the accounts it names.
    """
    address = client_address(request)
    if _count(f"password-reset:address:{address}", RESET_WINDOW) > settings.PASSWORD_RESET_ADDRESS_LIMIT:
        log.warning("password reset: address %s is over its hourly limit", address)
        return "address"
    account = hashlib.sha256(account_key(email).encode()).hexdigest()
    if _count(f"password-reset:account:{account}", RESET_WINDOW) > settings.PASSWORD_RESET_ACCOUNT_LIMIT:
        log.warning("password reset: an account is over its hourly limit (request from %s); no mail sent", address)
        return "account"
    return None
