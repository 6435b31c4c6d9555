"""Sign-in through a real OpenID Connect provider (django-oauth-toolkit, started on loopback)."""

import logging
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from allauth.socialaccount.models import SocialAccount
from rest_framework.authtoken.models import Token

from corporate.models import User
from sso.models import GroupMapping, IdentityProvider, ManagedMembership
from sso.tests.conftest import CALLBACK, SLUG, Journey
from workspaces.models import Membership, Workspace
from workspaces.roles import Role

pytestmark = pytest.mark.django_db


def signed_in_as(client):
    return client.session.get("_auth_user_id")


def test_sign_in_page_has_a_button_per_provider(client, idp):
    response = client.get("/accounts/login/")
    page = response.content.decode()
    assert "Sign in with Acme ID" in page
    assert f'action="/accounts/sso/{SLUG}/login/"' in page
    # Browsers apply form-action to the redirect after the button's POST: the provider is allowed.
    form_action = next(d for d in response["Content-Security-Policy"].split(";") if "form-action" in d)
    assert "'self'" in form_action and idp.base_url in form_action


def test_code_flow_with_pkce_signs_in_an_existing_account(journey, make_user, caplog):
    user = make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example", name="Jane Roe")
    authorize = journey.start(next_url="/workspaces/")
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(journey.provider.issuer + "/authorize/")
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["nonce"][0] and query["state"][0]
    assert set(query["scope"][0].split()) == {"openid", "email", "profile"}

    journey.at_provider("jane@acme.example")
    with caplog.at_level(logging.INFO, logger="sso"):
        response = journey.back()
    assert response.status_code == 302 and response["Location"] == "/workspaces/"
    assert signed_in_as(journey.client) == str(user.pk)
    assert journey.client.get("/").status_code == 200
    user.refresh_from_db()
    assert user.full_name == "Jane Roe"
    assert user.has_usable_password()  # OIDC_DISABLE_LOCAL_PASSWORDS is off
    assert SocialAccount.objects.filter(provider=SLUG, user=user).count() == 1
    assert "jane@acme.example signed in through acme" in caplog.text
    from audit.models import AuditEvent

    event = AuditEvent.objects.get(action="user.sso_login")
    assert (event.actor_id, event.details["provider"], event.details["account_created"]) == (user.pk, SLUG, False)


def test_the_provider_refuses_a_code_exchange_without_the_verifier(journey, make_user):
    """PKCE is real: the provider requires it, so the code alone is worth nothing."""
    import requests

    make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example")
    journey.start()
    code = parse_qs(urlsplit(journey.at_provider("jane@acme.example")).query)["code"][0]
    from sso.tests.oidc_provider import CLIENT_ID, CLIENT_SECRET

    answer = requests.post(
        journey.provider.issuer + "/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] in {"invalid_request", "invalid_grant"}


def test_wrong_state_is_refused_without_a_session(journey, make_user, caplog):
    make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example")
    journey.start()
    callback = journey.at_provider("jane@acme.example")
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    query["state"] = ["forged-state"]
    with caplog.at_level(logging.WARNING, logger="sso"):
        response = journey.back(f"{parts.path}?{urlencode(query, doseq=True)}")
    assert response.status_code == 400
    assert "not valid any more" in response.content.decode()
    assert signed_in_as(journey.client) is None
    assert "state is missing, unknown or already used" in caplog.text


def test_missing_state_and_replayed_callback_are_refused(journey, make_user):
    make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example")
    journey.start()
    callback = journey.at_provider("jane@acme.example")
    parts = urlsplit(callback)
    code = parse_qs(parts.query)["code"][0]
    assert journey.back(f"{parts.path}?code={code}").status_code == 400
    assert journey.back().status_code == 302  # the real one still works once
    journey.client.post("/accounts/logout/")
    replay = journey.back()
    assert replay.status_code == 400
    assert signed_in_as(journey.client) is None


@pytest.mark.parametrize(
    "mode",
    ["wrong_nonce", "expired", "wrong_key", "wrong_issuer", "wrong_audience"],
)
def test_a_bad_id_token_is_refused(journey, make_user, mode, caplog):
    make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example")
    journey.provider.misbehave(mode)
    with caplog.at_level(logging.WARNING, logger="sso"):
        response = journey.sign_in("jane@acme.example")
    assert response.status_code == 400
    assert "could not be verified" in response.content.decode()
    assert signed_in_as(journey.client) is None
    assert "refused" in caplog.text


def test_unverified_email_is_refused(journey, make_user):
    make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example", email_verified=False)
    response = journey.sign_in("jane@acme.example")
    assert response.status_code == 403
    assert "has not verified the address jane@acme.example" in response.content.decode()
    assert signed_in_as(journey.client) is None
    assert not SocialAccount.objects.exists()
    from audit.models import AuditEvent

    refused = AuditEvent.objects.get(action="user.sso_login_failed")
    assert refused.actor_id is None and refused.details["provider"] == SLUG


def test_no_account_and_auto_create_off(journey):
    journey.provider.add_user("new@acme.example")
    response = journey.sign_in("new@acme.example")
    assert response.status_code == 403
    assert "no account for new@acme.example" in response.content.decode()
    assert not User.objects.filter(email="new@acme.example").exists()
    assert signed_in_as(journey.client) is None


def test_auto_create_makes_the_account_for_an_allowed_domain(journey, settings):
    settings.OIDC_AUTO_CREATE = True
    settings.OIDC_ALLOWED_DOMAINS = ["acme.example"]
    journey.provider.add_user("new@acme.example", name="New Person")
    response = journey.sign_in("new@acme.example")
    assert response.status_code == 302
    user = User.objects.get(email="new@acme.example")
    assert user.full_name == "New Person" and not user.has_usable_password()
    assert signed_in_as(journey.client) == str(user.pk)


def test_domain_not_allowed(journey, settings, make_user):
    settings.OIDC_AUTO_CREATE = True
    settings.OIDC_ALLOWED_DOMAINS = ["acme.example"]
    make_user("jane@elsewhere.example")  # even an existing account: the domain rule comes first
    journey.provider.add_user("jane@elsewhere.example")
    response = journey.sign_in("jane@elsewhere.example")
    assert response.status_code == 403
    assert "elsewhere.example cannot sign in here" in response.content.decode()
    assert signed_in_as(journey.client) is None


def test_deactivated_account_is_refused(journey, make_user):
    make_user("jane@acme.example", is_active=False)
    journey.provider.add_user("jane@acme.example")
    response = journey.sign_in("jane@acme.example")
    assert response.status_code == 403
    assert signed_in_as(journey.client) is None


def test_groups_map_to_workspaces_and_are_applied_again_at_next_sign_in(journey, make_user, client):
    owner = make_user("owner@acme.example")
    research = Workspace.objects.create(name="Research", slug="research", created_by=owner)
    hr = Workspace.objects.create(name="HR", slug="hr", created_by=owner)
    legal = Workspace.objects.create(name="Legal", slug="legal", created_by=owner)
    for ws in (research, hr, legal):
        Membership.objects.create(workspace=ws, user=owner, role=Role.OWNER)
    GroupMapping.objects.create(provider=SLUG, group="engineering", workspace=research, role=Role.MEMBER)
    GroupMapping.objects.create(provider=SLUG, group="eng-leads", workspace=research, role=Role.ADMIN)
    GroupMapping.objects.create(provider=SLUG, group="people", workspace=hr, role=Role.VIEWER)
    jane = make_user("jane@acme.example")
    Membership.objects.create(workspace=legal, user=jane, role=Role.VIEWER)  # made by hand: never touched

    journey.provider.add_user("jane@acme.example", groups=["engineering", "eng-leads", "people"])
    assert journey.sign_in("jane@acme.example").status_code == 302
    roles = dict(Membership.objects.filter(user=jane).values_list("workspace__slug", "role"))
    assert roles == {"research": Role.ADMIN, "hr": Role.VIEWER, "legal": Role.VIEWER}

    # The directory changes: no longer a lead, no longer in people. Applied at the next sign-in.
    journey.client.post("/accounts/logout/")
    journey.provider.add_user("jane@acme.example", groups=["engineering"])
    again = Journey(client, journey.provider)
    assert again.sign_in("jane@acme.example").status_code == 302
    roles = dict(Membership.objects.filter(user=jane).values_list("workspace__slug", "role"))
    assert roles == {"research": Role.MEMBER, "legal": Role.VIEWER}
    assert set(ManagedMembership.objects.filter(user=jane).values_list("workspace__slug", flat=True)) == {"research"}


def test_group_map_from_the_environment_and_the_last_owner_stays(journey, make_user, settings):
    jane = make_user("jane@acme.example")
    ops = Workspace.objects.create(name="Ops", slug="ops", created_by=jane)
    Membership.objects.create(workspace=ops, user=jane, role=Role.OWNER)
    settings.OIDC_PROVIDERS = [{**settings.OIDC_PROVIDERS[0], "group_map": [["ops-team", "ops", "viewer"]]}]
    journey.provider.add_user("jane@acme.example", groups=["ops-team"])
    assert journey.sign_in("jane@acme.example").status_code == 302
    # The mapping says viewer, but a workspace keeps its last owner.
    assert Membership.objects.get(user=jane, workspace=ops).role == Role.OWNER


def test_local_password_turned_off_for_sso_users(journey, make_user, settings, client):
    settings.OIDC_DISABLE_LOCAL_PASSWORDS = True
    user = make_user("jane@acme.example", password="correct horse battery")
    token = Token.objects.create(user=user)  # taken with the local password
    journey.provider.add_user("jane@acme.example")
    assert journey.sign_in("jane@acme.example").status_code == 302
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert not Token.objects.filter(key=token.key).exists()  # a token lasts until the password changes
    journey.client.post("/accounts/logout/")
    response = client.post("/accounts/login/", {"username": "jane@acme.example", "password": "correct horse battery"})
    assert response.status_code == 200 and signed_in_as(client) is None


def test_sign_out_ends_the_provider_session_too(journey, make_user):
    make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example")
    journey.sign_in("jane@acme.example")
    page = journey.client.get("/")
    assert journey.provider.base_url in page["Content-Security-Policy"]  # the sign-out form may lead there
    response = journey.client.post("/accounts/logout/")
    assert signed_in_as(journey.client) is None
    location = response["Location"]
    assert location.startswith(journey.provider.issuer + "/logout/")
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == ["http://testserver/accounts/login/"]
    assert query["id_token_hint"][0].count(".") == 2
    # The provider accepts it and sends the browser back here.
    answer = journey.browser.get(location, allow_redirects=False)
    assert answer.status_code == 302 and answer.headers["Location"] == "http://testserver/accounts/login/"
    # Signed out there too: the next sign-in asks for the password again.
    journey.start()
    at_provider = journey.browser.get(journey.authorize_url, allow_redirects=False)
    assert "/accounts/login/" in at_provider.headers["Location"]


def test_password_sign_out_is_local(client, make_user):
    make_user("local@example.com")
    client.post("/accounts/login/", {"username": "local@example.com", "password": "correct horse battery"})
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert signed_in_as(client) is None


def test_provider_down_is_a_styled_page(client, settings, caplog):
    settings.OIDC_PROVIDERS = [
        {
            "slug": "down",
            "name": "Down",
            "issuer": "http://127.0.0.1:9",
            "client_id": "x",
            "secret_env": "",
            "scopes": ["openid"],
            "groups_claim": "groups",
            "group_map": [],
            "allowed_domains": [],
        }
    ]
    with caplog.at_level(logging.WARNING, logger="sso"):
        response = client.post("/accounts/sso/down/login/")
    assert response.status_code == 502
    assert "did not answer" in response.content.decode()
    assert "discovery failed" in caplog.text


def test_unknown_provider_and_get_are_refused(client, idp):
    assert client.post("/accounts/sso/nobody/login/").status_code == 404
    assert client.get(f"/accounts/sso/{SLUG}/login/").status_code == 405
    assert client.get("/accounts/sso/nobody/callback/?code=x&state=y").status_code == 404


def test_admin_provider_with_encrypted_secret(journey, make_user, settings, monkeypatch):
    """A provider added in the admin (secret stored encrypted) works like one from the environment."""
    settings.OIDC_PROVIDERS = []
    provider = IdentityProvider(
        slug=SLUG, name="Acme (admin)", issuer=journey.provider.issuer, client_id="corporate-test"
    )
    from sso.tests.oidc_provider import CLIENT_SECRET

    provider.set_secret(CLIENT_SECRET)
    provider.save()
    assert CLIENT_SECRET not in provider.client_secret_encrypted
    make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example")
    assert "Sign in with Acme (admin)" in journey.client.get("/accounts/login/").content.decode()
    assert journey.sign_in("jane@acme.example").status_code == 302
    assert signed_in_as(journey.client) is not None


def test_add_oidc_provider_command(db, monkeypatch):
    from django.core.management import CommandError, call_command

    monkeypatch.setenv("OKTA_SECRET", "s3cret")
    call_command(
        "add_oidc_provider",
        "okta",
        "--issuer",
        "https://acme.okta.com/",
        "--client-id",
        "abc",
        "--client-secret-env",
        "OKTA_SECRET",
        "--groups-claim",
        "roles",
    )
    provider = IdentityProvider.objects.get(slug="okta")
    assert (provider.issuer, provider.client_id, provider.client_secret_env, provider.groups_claim) == (
        "https://acme.okta.com",
        "abc",
        "OKTA_SECRET",
        "roles",
    )
    from sso.providers import get_provider

    assert get_provider("okta").secret() == "s3cret"
    with pytest.raises(CommandError, match="issuer"):
        call_command(
            "add_oidc_provider", "bad", "--issuer", "not a url", "--client-id", "a", "--client-secret-env", "X"
        )


def test_sso_sign_in_is_not_sent_to_two_factor_enrolment(journey, make_user):
    from django.core.management import call_command

    make_user("jane@acme.example")
    call_command("require_2fa")
    journey.provider.add_user("jane@acme.example")
    assert journey.sign_in("jane@acme.example").status_code == 302
    assert journey.client.get("/").status_code == 200


def test_a_provider_without_email_verified_needs_trust_email(journey, make_user, settings, client):
    make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example", email_verified=None)
    assert journey.sign_in("jane@acme.example").status_code == 403
    settings.OIDC_PROVIDERS = [{**settings.OIDC_PROVIDERS[0], "trust_email": True}]
    assert Journey(client, journey.provider).sign_in("jane@acme.example").status_code == 302
    # Trusted or not, an address the provider says is unverified is refused.
    client.post("/accounts/logout/")
    journey.provider.add_user("jane@acme.example", email_verified=False)
    assert Journey(client, journey.provider).sign_in("jane@acme.example").status_code == 403


def test_discovery_naming_another_issuer_is_refused(client, idp, settings, caplog):
    """The provider at the configured address says it is someone else: no sign-in starts."""
    other_name = idp.issuer.replace("127.0.0.1", "localhost")
    settings.OIDC_PROVIDERS = [{**settings.OIDC_PROVIDERS[0], "issuer": other_name}]
    with caplog.at_level(logging.WARNING, logger="sso"):
        response = client.post(f"/accounts/sso/{SLUG}/login/")
    assert response.status_code == 502
    assert "configuration could not be verified" in response.content.decode()
    assert "names the issuer" in caplog.text


@pytest.mark.parametrize("next_url", ["-1", "workspaces"])
def test_a_next_that_is_no_path_still_signs_in(journey, make_user, next_url):
    user = make_user("jane@acme.example")
    journey.provider.add_user("jane@acme.example", name="Jane Roe")
    journey.start(next_url=next_url)
    journey.at_provider("jane@acme.example")
    response = journey.back()
    assert response.status_code == 302
    assert signed_in_as(journey.client) == str(user.pk)
