"""django-allauth's hooks: where apps come from, what happens after the provider answered, and errors."""

import logging
from contextlib import suppress

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.db import DatabaseError

from sso.provider import PROVIDER_ID

log = logging.getLogger(__name__)


def social_app(config):
    """An unsaved allauth SocialApp for a configured provider (nothing is kept in allauth's tables)."""
    from allauth.socialaccount.models import SocialApp

    return SocialApp(
        provider=PROVIDER_ID,
        provider_id=config.slug,
        name=config.name,
        client_id=config.client_id,
        secret=config.secret(),
        settings={
            "server_url": config.issuer,
            "issuer": config.issuer,
            "scope": list(config.scopes),
            "oauth_pkce_enabled": True,
        },
    )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request, provider=None, client_id=None):
        from sso.providers import all_providers, get_provider

        if provider and provider != PROVIDER_ID:
            config = get_provider(provider)
            configs = [config] if config else []
        else:
            configs = all_providers()
        return [social_app(c) for c in configs if client_id is None or c.client_id == client_id]

    def pre_social_login(self, request, sociallogin):
        """The provider vouched for someone: decide here and answer; allauth's own sign-up flow is never used."""
        from sso.signin import complete_sign_in, restore_link

        try:
            response = complete_sign_in(request, sociallogin)
        except Exception:
            with suppress(DatabaseError):  # the error stays the one reported
                restore_link(request)  # an error is no sign-in either: the link keeps what it held
            raise
        raise ImmediateHttpResponse(response)

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        from requests import RequestException

        from sso.signin import refuse

        slug = getattr(getattr(provider, "app", None), "provider_id", "?")
        status = 400
        if error == "cancelled":
            reason = "cancelled at the provider"
            message = "The sign-in was cancelled at your identity provider. Nothing was changed."
        elif exception is None and "state_id" in (extra_context or {}):
            reason = "the state is missing, unknown or already used"
            message = (
                "This sign-in link is not valid any more: it was used already, it expired, or it was started in "
                "another browser. Start again from the sign-in page."
            )
        elif exception is None:
            reason = f"the provider answered with an error: {request.GET.get('error', 'no code')[:100]}"
            message = "Your identity provider refused the sign-in. Try again, or ask your administrator."
        elif isinstance(exception, RequestException):
            status = 502
            reason = f"the provider did not answer: {exception.__class__.__name__}"
            message = "Your identity provider did not answer. Try again in a moment, or sign in with your password."
        else:
            reason = f"{exception.__class__.__name__}: {exception}"
            message = (
                "Your identity provider's answer could not be verified, so you were not signed in. "
                "Try again; if it keeps happening, tell your administrator."
            )
        raise ImmediateHttpResponse(refuse(request, slug, reason, message, status=status))
