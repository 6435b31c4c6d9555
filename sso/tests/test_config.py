"""Providers from the environment and the admin, and what the sign-in page costs."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from corporate.env import env_oidc_providers
from sso.admin import IdentityProviderForm
from sso.models import IdentityProvider
from sso.providers import all_providers, get_provider


def test_providers_from_the_environment(monkeypatch):
    monkeypatch.setenv("OIDC_PROVIDERS", "okta, Entra-ID")
    monkeypatch.setenv("OIDC_OKTA_ISSUER", "https://acme.okta.com/")
    monkeypatch.setenv("OIDC_OKTA_CLIENT_ID", "0oa1")
    monkeypatch.setenv("OIDC_OKTA_GROUP_MAP", "engineering=research:member, eng=leads=research:Admin")
    monkeypatch.setenv("OIDC_OKTA_ALLOWED_DOMAINS", "Acme.com")
    monkeypatch.setenv("OIDC_ENTRA_ID_ISSUER", "https://login.microsoftonline.com/tenant/v2.0")
    monkeypatch.setenv("OIDC_ENTRA_ID_CLIENT_ID", "app")
    monkeypatch.setenv("OIDC_ENTRA_ID_DISPLAY_NAME", "Microsoft")
    okta, entra = env_oidc_providers()
    assert okta["issuer"] == "https://acme.okta.com" and okta["secret_env"] == "OIDC_OKTA_CLIENT_SECRET"
    assert okta["group_map"] == [("engineering", "research", "member"), ("eng=leads", "research", "admin")]
    assert okta["allowed_domains"] == ["acme.com"] and okta["scopes"] == ["openid", "email", "profile"]
    assert entra["slug"] == "entra-id" and entra["name"] == "Microsoft"


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"OIDC_PROVIDERS": "bad name"}, "OIDC_PROVIDERS"),
        ({"OIDC_PROVIDERS": "okta"}, "OIDC_OKTA_ISSUER"),
        ({"OIDC_PROVIDERS": "okta", "OIDC_OKTA_ISSUER": "https://x"}, "OIDC_OKTA_CLIENT_ID"),
        (
            {
                "OIDC_PROVIDERS": "okta",
                "OIDC_OKTA_ISSUER": "https://x",
                "OIDC_OKTA_CLIENT_ID": "a",
                "OIDC_OKTA_GROUP_MAP": "x",
            },
            "OIDC_OKTA_GROUP_MAP",
        ),
    ],
)
def test_bad_provider_settings_name_the_variable(monkeypatch, variables, message):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_oidc_providers()


@pytest.mark.django_db
def test_admin_form_keeps_the_secret_encrypted_and_write_only():
    data = {
        "slug": "kc",
        "name": "Keycloak",
        "issuer": "https://sso.acme.example/realms/main/",
        "client_id": "corporate",
        "client_secret": "very-secret",
        "scopes": "openid email profile",
        "groups_claim": "groups",
        "enabled": True,
    }
    form = IdentityProviderForm(data)
    assert form.is_valid(), form.errors
    provider = form.save()
    assert provider.issuer == "https://sso.acme.example/realms/main"
    assert "very-secret" not in provider.client_secret_encrypted
    assert get_provider("kc").secret() == "very-secret"
    # Saving again without a secret keeps the stored one; the form never shows it.
    again = IdentityProviderForm({**data, "client_secret": "", "name": "Keycloak SSO"}, instance=provider)
    assert again.is_valid(), again.errors
    again.save()
    assert get_provider("kc").secret() == "very-secret"
    assert "very-secret" not in str(again["client_secret"])
    # Neither a secret nor a variable: refused with a message.
    empty = IdentityProviderForm({**data, "slug": "other", "client_secret": ""})
    assert not empty.is_valid() and "client secret" in str(empty.errors)


@pytest.mark.django_db
def test_disabled_providers_are_left_out():
    IdentityProvider.objects.create(slug="off", name="Off", issuer="https://x.example", client_id="a", enabled=False)
    assert get_provider("off") is None and all_providers() == []


@pytest.mark.django_db
def test_sign_in_page_queries(client, django_assert_num_queries):
    for index in range(3):
        IdentityProvider.objects.create(slug=f"p{index}", name=f"P{index}", issuer="https://x.example", client_id="a")
    # 1: the enabled identity providers (the page's buttons); nobody is signed in, so no session query.
    with django_assert_num_queries(1):
        page = client.get("/accounts/login/").content.decode()
    assert page.count("Sign in with P") == 3
