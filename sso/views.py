import logging
from urllib.parse import urlencode

from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from requests import RequestException

from sso import provider as oidc
from sso.providers import get_provider
from sso.signin import SESSION_ID_TOKEN, SESSION_PROVIDER, refuse

log = logging.getLogger(__name__)

UNREACHABLE = "Your identity provider did not answer. Try again in a moment, or sign in with your password."
MISCONFIGURED = (
    "Your identity provider's configuration could not be verified, so the sign-in did not start. "
    "Tell your administrator."
)


@never_cache
@require_POST
def sso_login(request, slug):
    """Start a sign-in at the provider (a POST from the sign-in page's button, so no page can start one)."""
    if get_provider(slug) is None:
        return refuse(request, slug, "unknown provider", "This sign-in method is not available.", status=404)
    try:
        return oidc.login_view(request, slug)
    except OAuth2Error as exc:
        return refuse(request, slug, f"discovery failed: {exc}", MISCONFIGURED, status=502)
    except (RequestException, ValueError, KeyError) as exc:
        # The discovery document could not be fetched or read (provider down, not OpenID Connect).
        return refuse(request, slug, f"discovery failed: {exc.__class__.__name__}: {exc}", UNREACHABLE, status=502)


@never_cache
@require_http_methods(["GET", "POST"])
def sso_callback(request, slug):
    if get_provider(slug) is None:
        return refuse(request, slug, "unknown provider", "This sign-in method is not available.", status=404)
    try:
        return oidc.callback_view(request, slug)
    except OAuth2Error as exc:
        return refuse(request, slug, f"callback failed: {exc}", MISCONFIGURED, status=502)
    except (RequestException, ValueError, KeyError) as exc:
        return refuse(request, slug, f"callback failed: {exc.__class__.__name__}: {exc}", UNREACHABLE, status=502)


@never_cache
@require_POST
def sign_out(request):
    """End the local session; then, for an SSO session, the provider's too where it supports RP-initiated logout."""
    slug = request.session.get(SESSION_PROVIDER)
    id_token = request.session.get(SESSION_ID_TOKEN)
    logout(request)
    login_url = request.build_absolute_uri(reverse(settings.LOGOUT_REDIRECT_URL))
    if slug:
        end_session = _end_session_endpoint(request, slug)
        if end_session:
            config = get_provider(slug)
            params = {"post_logout_redirect_uri": login_url, "client_id": config.client_id}
            if id_token:
                params["id_token_hint"] = id_token
            separator = "&" if "?" in end_session else "?"
            return HttpResponseRedirect(end_session + separator + urlencode(params))
    return redirect(settings.LOGOUT_REDIRECT_URL)


def _end_session_endpoint(request, slug):
    try:
        adapter = oidc.CompanyOIDCAdapter(request, slug)
        endpoint = adapter.openid_config.get("end_session_endpoint")
    except Exception as exc:  # the provider is down or misconfigured: the local sign-out stands
        log.warning("sso: no provider sign-out for %s: %s", slug, exc.__class__.__name__)
        return None
    return endpoint if isinstance(endpoint, str) and endpoint.startswith(("https://", "http://")) else None
