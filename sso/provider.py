"""OpenID Connect through django-allauth, with the checks a company sign-in needs.

allauth's `openid_connect` provider does the protocol: the redirect with a
state kept in the session, PKCE, the code exchange, the discovery document
and the provider's keys. This subclass adds what it leaves out: a nonce in
every request, checked in the ID token; the ID token's signature always
checked against the provider's published keys (allauth skips it when the
token came over TLS); the discovery document's issuer must be the configured
one; and the discovery document is cached for a while. The account decisions
(which user, whether to create one, groups) live in sso.signin.
"""

import hmac
import logging
import secrets

from allauth.socialaccount.internal import jwtkit
from allauth.socialaccount.providers.base import AuthProcess
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.core.cache import cache
from django.urls import reverse

log = logging.getLogger(__name__)

PROVIDER_ID = "company_oidc"
DISCOVERY_TTL = 60 * 10  # seconds a provider's discovery document is reused


class CompanyOIDCAdapter(OpenIDConnectOAuth2Adapter):
    # Set by the callback view from the state stashed in the session at the redirect.
    expected_nonce = None

    @property
    def openid_config(self):
        if not hasattr(self, "_openid_config"):
            provider = self.get_provider()
            key = f"sso:discovery:{provider.app.provider_id}:{provider.app.settings['server_url']}"
            config = cache.get(key)
            if config is None:
                config = super().openid_config
                configured = provider.app.settings["issuer"].rstrip("/")
                if str(config.get("issuer", "")).rstrip("/") != configured:
                    raise OAuth2Error(
                        f"the discovery document names the issuer {config.get('issuer')!r}, not {configured!r}"
                    )
                cache.set(key, config, DISCOVERY_TTL)
            self._openid_config = config
        return self._openid_config

    def complete_login(self, request, app, token, **kwargs):
        id_token = kwargs["response"].get("id_token")
        if not id_token:
            raise OAuth2Error("the provider sent no ID token")
        claims = jwtkit.verify_and_decode(
            credential=id_token,
            keys_url=self.openid_config["jwks_uri"],
            issuer=self.openid_config["issuer"],
            audience=app.client_id,
            lookup_kid=jwtkit.lookup_kid_jwk,
            verify_signature=True,
        )
        nonce = str(claims.get("nonce") or "")
        if not self.expected_nonce or not hmac.compare_digest(nonce, self.expected_nonce):
            raise OAuth2Error("the ID token's nonce does not match the one sent")
        data = {"id_token": claims}
        if app.settings.get("fetch_userinfo", True) and self.openid_config.get("userinfo_endpoint"):
            userinfo = self._fetch_user_info(token.token)
            if str(userinfo.get("sub")) != str(claims.get("sub")):
                raise OAuth2Error("the user info is for another subject than the ID token")
            data["userinfo"] = userinfo
        # The raw token, for RP-initiated sign-out (id_token_hint); sso.signin keeps it in the session.
        request.sso_id_token = id_token
        sociallogin = self.get_provider().sociallogin_from_response(request, data)
        # allauth's lookup() writes these claims over the link's before sso.signin decides: what the link
        # held is kept, to be put back if the sign-in is refused.
        request.sso_link_before = _stored_link(sociallogin.account)
        return sociallogin

    def get_callback_url(self, request, app):
        from allauth.utils import build_absolute_uri

        return build_absolute_uri(request, reverse("sso:callback", kwargs={"slug": self.provider_id}))


def _stored_link(account):
    """(pk, extra_data) of the existing link for this subject, or None, read before allauth overwrites it."""
    from allauth.socialaccount.models import SocialAccount

    return (
        SocialAccount.objects.filter(provider=account.provider, uid=account.uid).values_list("pk", "extra_data").first()
    )


class CompanyOIDCProvider(OpenIDConnectProvider):
    id = PROVIDER_ID
    name = "Company sign-in"
    oauth2_adapter_class = CompanyOIDCAdapter
    pkce_enabled_default = True

    def get_login_url(self, request, **kwargs):
        return reverse("sso:login", kwargs={"slug": self.app.provider_id})

    def get_callback_url(self):
        return reverse("sso:callback", kwargs={"slug": self.app.provider_id})

    def get_redirect_from_request_kwargs(self, request):
        kwargs = super().get_redirect_from_request_kwargs(request)
        # Only a sign-in: never "connect" to whoever is signed in, never "redirect" without signing in.
        kwargs["process"] = AuthProcess.LOGIN
        kwargs["scope"] = self.get_scope()
        kwargs["auth_params"] = self.get_auth_params()
        return kwargs

    def redirect(self, request, process, next_url=None, data=None, **kwargs):
        nonce = secrets.token_urlsafe(32)
        auth_params = dict(kwargs.pop("auth_params", None) or self.get_auth_params())
        auth_params["nonce"] = nonce
        return super().redirect(request, process, next_url, data, auth_params=auth_params, oidc_nonce=nonce, **kwargs)

    def extract_common_fields(self, data):
        return super().extract_common_fields(merged_claims(data))

    def extract_email_addresses(self, data):
        return super().extract_email_addresses(merged_claims(data))


def merged_claims(data):
    """The ID token's claims with the user info's on top (the user info is usually fuller)."""
    if "id_token" not in data and "userinfo" not in data:
        return data
    return {**(data.get("id_token") or {}), **(data.get("userinfo") or {})}


class CallbackView(OAuth2CallbackView):
    def _get_state(self, request, provider):
        state, response = super()._get_state(request, provider)
        self.adapter.expected_nonce = (state or {}).get("oidc_nonce")
        return state, response


def login_view(request, slug):
    return OAuth2LoginView.adapter_view(CompanyOIDCAdapter(request, slug))(request)


def callback_view(request, slug):
    return CallbackView.adapter_view(CompanyOIDCAdapter(request, slug))(request)


provider_classes = [CompanyOIDCProvider]
