import logging
from base64 import b32encode

from axes.handlers.proxy import AxesProxyHandler
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from corporate.auth import client_address
from corporate.redirects import redirect_next, safe_next
from corporate.views import locked_out
from twofactor import events, flow, policy
from twofactor.forms import CodeForm

log = logging.getLogger(__name__)

WRONG_CODE = "That code is not right. Check the time on your phone, or use one of your recovery codes."


@never_cache
@sensitive_post_parameters("code")
def verify(request):
    """The second step: a code from the authenticator app or a recovery code, counted like passwords."""
    user, pending = flow.pending_user(request)
    if user is None:
        messages.info(request, "Your sign-in took too long or was not started. Enter your password again.")
        return redirect("login")
    credentials = {"username": user.email}
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if AxesProxyHandler.is_locked(request, credentials):
            return locked_out(request)
        device = policy.verify(user, form.data.get("code")) if form.is_valid() else None
        if device is not None:
            request.session.pop(flow.PENDING, None)
            login(request, user, backend=pending["backend"])
            otp_login(request, device)
            if device.persistent_id.startswith("otp_static"):
                left = policy.remaining_recovery_codes(user)
                messages.warning(request, f"You used a recovery code; {left} left. Make new ones on the security page.")
            return redirect_next(request, pending.get("next"))
        log.warning("two-factor: a wrong code for %s from %s", user.email, client_address(request))
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        if getattr(request, "axes_locked_out", False):
            return locked_out(request)
        form.errors.clear()
        form.add_error("code", WRONG_CODE)
    return render(
        request, "twofactor/verify.html", {"form": form, "email": user.email}, status=400 if form.errors else 200
    )


@login_required
@never_cache
def overview(request):
    user = request.user
    context = {
        "enrolled": policy.is_enrolled(user),
        "required": policy.is_required(user),
        "recovery_left": policy.remaining_recovery_codes(user),
        "sso_session": bool(request.session.get("sso_provider")),
        "form": CodeForm(),
    }
    return render(request, "twofactor/overview.html", context)


def _qr_svg(url):
    import segno

    return segno.make(url, error="m").svg_inline(scale=5, border=2, dark="#111827", omitsize=True)


@login_required
@never_cache
@sensitive_post_parameters("code")
def setup(request):
    """Enrol an authenticator app: a QR code (drawn here, as SVG), then one code to confirm it."""
    user = request.user
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if policy.is_enrolled(user):
        return redirect("twofactor:overview")
    device = policy.totp_device(user, confirmed=False)
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=policy.TOTP_NAME, confirmed=False)
    form = CodeForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid() and device.verify_token("".join(form.cleaned_data["code"].split())):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
            codes = policy.new_recovery_codes(user)
            otp_login(request, device)
            request.session.pop(flow.MUST_ENROL, None)
            events.enrolled(request, user)
            return render(
                request, "twofactor/recovery_codes.html", {"codes": codes, "next": safe_next(request, next_url)}
            )
        form.errors.clear()
        form.add_error("code", "That code is not right. Scan the QR code again and enter the code the app shows now.")
    secret = b32encode(device.bin_key).decode().rstrip("=")
    context = {
        "form": form,
        "qr_svg": _qr_svg(device.config_url),
        "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        "required": policy.is_required(user),
        "next": next_url,
    }
    return render(request, "twofactor/setup.html", context, status=400 if form.errors else 200)


def _check_current_code(request):
    form = CodeForm(request.POST)
    if form.is_valid() and policy.verify(request.user, form.cleaned_data["code"]):
        return True
    messages.error(request, "That code is not right; nothing was changed.")
    return False


@login_required
@require_POST
@sensitive_post_parameters("code")
def recovery_codes(request):
    """New recovery codes (the old ones stop working), after a current code."""
    if not policy.is_enrolled(request.user) or not _check_current_code(request):
        return redirect("twofactor:overview")
    codes = policy.new_recovery_codes(request.user)
    events.recovery_codes_renewed(request, request.user)
    return render(request, "twofactor/recovery_codes.html", {"codes": codes, "next": safe_next(request, "")})


@login_required
@require_POST
@sensitive_post_parameters("code")
def disable(request):
    """Turn two-factor sign-in off, after a current code; not while the policy requires it."""
    if policy.is_required(request.user):
        messages.error(request, "Two-factor sign-in is required for your account; it cannot be turned off.")
        return redirect("twofactor:overview")
    if not _check_current_code(request):
        return redirect("twofactor:overview")
    policy.remove_all(request.user)
    events.disabled(request, request.user)
    messages.success(request, "Two-factor sign-in is off.")
    return redirect("twofactor:overview")
