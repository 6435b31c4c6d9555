"""Which account a provider's identity reaches once accounts are linked, and what a refused callback leaves alone."""

import importlib
import logging

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.exceptions import ImproperlyConfigured

from corporate.env import env_oidc_providers
from corporate.models import User
from sso.models import GroupMapping, LinkIssuer, ManagedMembership
from sso.tests.conftest import SLUG, Journey
from workspaces.models import Membership, Workspace
from workspaces.roles import Role

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def signed_in_as(client):
    return client.session.get("_auth_user_id")


def test_an_address_given_to_another_subject_does_not_reach_the_linked_account(journey, make_user, client, caplog):
    jane = make_user("jane@acme.example", is_staff=True)
    journey.provider.add_user("jane-old", email="jane@acme.example")
    assert journey.sign_in("jane-old").status_code == 302
    link = SocialAccount.objects.get(provider=SLUG, user=jane)
    journey.client.post("/accounts/logout/")
    # At the provider, Jane's address moves to a newcomer (a leaver's address, a rename).
    journey.provider.add_user("jane-old", email="jane.former@acme.example")
    journey.provider.add_user("newcomer", email="jane@acme.example")
    with caplog.at_level(logging.WARNING, logger="sso"):
        response = Journey(client, journey.provider).sign_in("newcomer")
    assert response.status_code == 403
    assert "already linked to another single sign-on identity" in response.content.decode()
    assert signed_in_as(client) is None
    assert list(SocialAccount.objects.filter(user=jane).values_list("uid", flat=True)) == [link.uid]
    assert len([r for r in caplog.records if r.name.startswith("sso") and r.levelno == logging.WARNING]) == 1
    assert "jane@acme.example is already linked to another identity (through acme)" in caplog.text
    # The linked subject itself still signs in, whatever its address now.
    assert Journey(client, journey.provider).sign_in("jane-old").status_code == 302
    assert signed_in_as(client) == str(jane.pk)


def test_an_account_linked_through_another_provider_is_not_linked_by_email(journey, make_user, client):
    jane = make_user("jane@acme.example")
    SocialAccount.objects.create(provider="okta", uid="00u1", user=jane, extra_data={"iss": "https://acme.okta.com"})
    journey.provider.add_user("jane@acme.example")
    response = journey.sign_in("jane@acme.example")
    assert response.status_code == 403 and signed_in_as(journey.client) is None
    assert not SocialAccount.objects.filter(provider=SLUG).exists()
    # Staff link it by removing the other link (or adding this one in the admin): then the address matches.
    SocialAccount.objects.filter(provider="okta").delete()
    assert Journey(client, journey.provider).sign_in("jane@acme.example").status_code == 302
    assert signed_in_as(client) == str(jane.pk)


def test_a_link_added_by_staff_without_an_issuer_is_used_and_gets_one(journey, make_user, client):
    jane = make_user("jane@acme.example")
    journey.provider.add_user("jane-at-acme", email="jane@acme.example")
    assert journey.sign_in("jane-at-acme").status_code == 302
    journey.client.post("/accounts/logout/")
    SocialAccount.objects.filter(user=jane).update(extra_data={})  # as staff add a link in the admin
    LinkIssuer.objects.filter(account__user=jane).delete()
    journey.provider.add_user("jane-at-acme", email="jane.roe@acme.example")  # the link, not the address, decides
    assert Journey(client, journey.provider).sign_in("jane-at-acme").status_code == 302
    assert signed_in_as(client) == str(jane.pk)
    assert SocialAccount.objects.get(user=jane).extra_data["iss"] == journey.provider.issuer
    assert LinkIssuer.objects.get(account__user=jane).issuer == journey.provider.issuer


@pytest.mark.parametrize("claims_too", [True, False], ids=["claims-and-record", "record-only"])
def test_a_link_made_under_another_issuer_is_not_used(journey, make_user, client, caplog, claims_too):
    ceo = make_user("ceo@acme.example", is_staff=True, is_superuser=True)
    mallory = make_user("mallory@acme.example")
    journey.provider.add_user("mallory@acme.example")
    assert journey.sign_in("mallory@acme.example").status_code == 302
    link = SocialAccount.objects.get(provider=SLUG, user=mallory)
    assert link.extra_data["iss"] == journey.provider.issuer
    journey.client.post("/accounts/logout/")
    # The provider was pointed at another issuer; an old link with the same subject names the CEO.
    old_claims = {**link.extra_data, "iss": "https://old-tenant.example/o"} if claims_too else link.extra_data
    SocialAccount.objects.filter(pk=link.pk).update(user=ceo, extra_data=old_claims)
    # Record only: claims rewritten by an attempt that never reached a refusal (an error on the way).
    LinkIssuer.objects.filter(account=link).update(issuer="https://old-tenant.example/o")
    for attempt in range(3):  # allauth writes each attempt's claims over the link's: none may count later
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sso"):
            response = Journey(client, journey.provider).sign_in("mallory@acme.example")
        assert response.status_code == 403, attempt
        assert "earlier configuration of this identity provider" in response.content.decode()
        assert signed_in_as(client) is None
        assert "under the issuer https://old-tenant.example/o" in caplog.text
        stored = SocialAccount.objects.get(pk=link.pk)
        assert stored.user == ceo  # nothing rewritten; staff remove the old link
        assert stored.extra_data == old_claims
        assert LinkIssuer.objects.get(account=link).issuer == "https://old-tenant.example/o"


def test_a_link_with_an_issuer_in_its_claims_only_is_refused_every_time(journey, make_user, client):
    """A link from before the issuer was recorded apart: the one in its claims, put back after each refusal."""
    ceo = make_user("ceo@acme.example", is_staff=True, is_superuser=True)
    make_user("mallory@acme.example")
    journey.provider.add_user("mallory@acme.example")
    assert journey.sign_in("mallory@acme.example").status_code == 302
    journey.client.post("/accounts/logout/")
    link = SocialAccount.objects.get(provider=SLUG)
    SocialAccount.objects.filter(pk=link.pk).update(
        user=ceo, extra_data={**link.extra_data, "iss": "https://old-tenant.example/o"}
    )
    LinkIssuer.objects.filter(account=link).delete()
    for attempt in range(3):
        assert Journey(client, journey.provider).sign_in("mallory@acme.example").status_code == 403, attempt
        assert signed_in_as(client) is None
        assert SocialAccount.objects.get(pk=link.pk).extra_data["iss"] == "https://old-tenant.example/o"
        assert not LinkIssuer.objects.filter(account=link).exists()


def test_the_issuers_of_existing_links_are_recorded_by_the_migration(make_user):
    from django.apps import apps

    migration = importlib.import_module("sso.migrations.0003_link_issuer")
    jane, joe, ann = make_user("jane@acme.example"), make_user("joe@acme.example"), make_user("ann@acme.example")
    flat = SocialAccount.objects.create(provider=SLUG, uid="1", user=jane, extra_data={"iss": "https://a.example/o/"})
    nested = SocialAccount.objects.create(
        provider=SLUG, uid="2", user=joe, extra_data={"id_token": {"iss": "https://b.example/o"}, "userinfo": {}}
    )
    SocialAccount.objects.create(provider=SLUG, uid="3", user=ann, extra_data={})
    migration.record_the_issuers_of_existing_links(apps, None)
    assert dict(LinkIssuer.objects.values_list("account_id", "issuer")) == {
        flat.pk: "https://a.example/o",
        nested.pk: "https://b.example/o",
    }


@pytest.mark.parametrize(
    "url",
    [
        f"/accounts/sso/{SLUG}/callback/?error=access_denied",
        f"/accounts/sso/{SLUG}/callback/",
        "/accounts/sso/no-such-provider/callback/",
    ],
)
def test_a_stray_callback_leaves_an_existing_session_alone(idp, client, make_user, url):
    user = make_user("local@example.com")
    client.post("/accounts/login/", {"username": "local@example.com", "password": PASSWORD})
    assert signed_in_as(client) == str(user.pk)
    response = client.get(url)  # a link or a redirect from any site: no state, no CSRF token
    assert response.status_code in (400, 404)
    assert signed_in_as(client) == str(user.pk)
    assert client.get("/").status_code == 200


def test_a_refused_sign_in_leaves_the_session_before_it_and_makes_none(journey, make_user):
    local = make_user("local@example.com")
    journey.client.post("/accounts/login/", {"username": "local@example.com", "password": PASSWORD})
    journey.provider.add_user("nobody@acme.example")
    assert journey.sign_in("nobody@acme.example").status_code == 403  # no account for the address
    assert signed_in_as(journey.client) == str(local.pk)


@pytest.fixture
def research(make_user):
    owner = make_user("owner@acme.example")
    research = Workspace.objects.create(name="Research", slug="research", created_by=owner)
    Membership.objects.create(workspace=research, user=owner, role=Role.OWNER)
    return research


def test_group_mappings_never_remove_nor_lower_a_membership_they_did_not_make(journey, make_user, client, research):
    jane = make_user("jane@acme.example")
    Membership.objects.create(workspace=research, user=jane, role=Role.ADMIN)  # invited by hand
    GroupMapping.objects.create(provider=SLUG, group="engineering", workspace=research, role=Role.ADMIN)
    GroupMapping.objects.create(provider=SLUG, group="readers", workspace=research, role=Role.VIEWER)
    journey.provider.add_user("jane@acme.example", groups=["engineering"])
    assert journey.sign_in("jane@acme.example").status_code == 302
    assert not ManagedMembership.objects.filter(user=jane).exists()
    journey.client.post("/accounts/logout/")

    journey.provider.add_user("jane@acme.example", groups=["readers"])  # a lower role: not applied
    assert Journey(client, journey.provider).sign_in("jane@acme.example").status_code == 302
    assert Membership.objects.get(user=jane, workspace=research).role == Role.ADMIN
    client.post("/accounts/logout/")

    journey.provider.add_user("jane@acme.example", groups=[])  # no group at all: still a member
    assert Journey(client, journey.provider).sign_in("jane@acme.example").status_code == 302
    assert Membership.objects.get(user=jane, workspace=research).role == Role.ADMIN
    assert not ManagedMembership.objects.filter(user=jane).exists()


def sign_in_with_groups(client, provider, email, groups):
    client.post("/accounts/logout/")
    provider.add_user(email, groups=groups)
    assert Journey(client, provider).sign_in(email).status_code == 302


def role_of(user, workspace):
    return Membership.objects.filter(user=user, workspace=workspace).values_list("role", flat=True).first()


def test_a_role_a_mapping_raised_on_a_hand_made_membership_is_put_back(journey, make_user, client, research):
    jane = make_user("jane@acme.example")
    Membership.objects.create(workspace=research, user=jane, role=Role.VIEWER)  # invited by hand
    GroupMapping.objects.create(provider=SLUG, group="engineering", workspace=research, role=Role.MEMBER)
    GroupMapping.objects.create(provider=SLUG, group="eng-leads", workspace=research, role=Role.ADMIN)
    sign_in_with_groups(client, journey.provider, "jane@acme.example", ["engineering", "eng-leads"])
    assert role_of(jane, research) == Role.ADMIN
    assert ManagedMembership.objects.get(user=jane, workspace=research).raised_from == Role.VIEWER

    sign_in_with_groups(client, journey.provider, "jane@acme.example", ["engineering"])  # no longer a lead
    assert role_of(jane, research) == Role.MEMBER
    sign_in_with_groups(client, journey.provider, "jane@acme.example", [])  # left the groups at the provider
    assert role_of(jane, research) == Role.VIEWER  # the role it was given by hand, still a member
    assert not ManagedMembership.objects.filter(user=jane).exists()
    sign_in_with_groups(client, journey.provider, "jane@acme.example", [])
    assert role_of(jane, research) == Role.VIEWER


def test_a_role_lowered_by_hand_after_a_raise_is_not_raised_back(journey, make_user, client, research):
    jane = make_user("jane@acme.example")
    Membership.objects.create(workspace=research, user=jane, role=Role.MEMBER)
    GroupMapping.objects.create(provider=SLUG, group="eng-leads", workspace=research, role=Role.ADMIN)
    sign_in_with_groups(client, journey.provider, "jane@acme.example", ["eng-leads"])
    assert role_of(jane, research) == Role.ADMIN
    Membership.objects.filter(user=jane, workspace=research).update(role=Role.VIEWER)  # on the members page
    sign_in_with_groups(client, journey.provider, "jane@acme.example", [])
    assert role_of(jane, research) == Role.VIEWER
    assert not ManagedMembership.objects.filter(user=jane).exists()


def test_a_raised_membership_removed_by_hand_is_forgotten(journey, make_user, client, research):
    jane = make_user("jane@acme.example")
    Membership.objects.create(workspace=research, user=jane, role=Role.VIEWER)
    GroupMapping.objects.create(provider=SLUG, group="eng-leads", workspace=research, role=Role.ADMIN)
    sign_in_with_groups(client, journey.provider, "jane@acme.example", ["eng-leads"])
    Membership.objects.filter(user=jane, workspace=research).delete()
    sign_in_with_groups(client, journey.provider, "jane@acme.example", [])
    assert role_of(jane, research) is None and not ManagedMembership.objects.filter(user=jane).exists()
    # In the group again: a membership the mapping makes, removed when the group no longer gives it.
    sign_in_with_groups(client, journey.provider, "jane@acme.example", ["eng-leads"])
    assert role_of(jane, research) == Role.ADMIN
    assert ManagedMembership.objects.get(user=jane, workspace=research).raised_from == ""
    sign_in_with_groups(client, journey.provider, "jane@acme.example", [])
    assert role_of(jane, research) is None


def test_a_raised_last_owner_keeps_the_role_until_there_is_another(journey, make_user, client, research, caplog):
    jane = make_user("jane@acme.example")
    Membership.objects.create(workspace=research, user=jane, role=Role.ADMIN)
    GroupMapping.objects.create(provider=SLUG, group="owners", workspace=research, role=Role.OWNER)
    sign_in_with_groups(client, journey.provider, "jane@acme.example", ["owners"])
    assert role_of(jane, research) == Role.OWNER
    Membership.objects.filter(workspace=research).exclude(user=jane).delete()  # the other owner left
    with caplog.at_level(logging.WARNING, logger="sso"):
        sign_in_with_groups(client, journey.provider, "jane@acme.example", [])
    assert role_of(jane, research) == Role.OWNER
    assert "stays owner of research" in caplog.text
    assert ManagedMembership.objects.get(user=jane, workspace=research).raised_from == Role.ADMIN
    Membership.objects.create(workspace=research, user=make_user("boss@acme.example"), role=Role.OWNER)
    sign_in_with_groups(client, journey.provider, "jane@acme.example", [])
    assert role_of(jane, research) == Role.ADMIN
    assert not ManagedMembership.objects.filter(user=jane).exists()


def test_a_mapping_row_with_an_unknown_role_is_skipped_not_a_500(journey, make_user, research, caplog):
    jane = make_user("jane@acme.example")
    GroupMapping.objects.create(provider=SLUG, group="engineering", workspace=research, role=Role.MEMBER)
    GroupMapping.objects.filter(group="engineering").update(role="superuser")  # written past the admin's checks
    journey.provider.add_user("jane@acme.example", groups=["engineering"])
    with caplog.at_level(logging.WARNING, logger="sso"):
        assert journey.sign_in("jane@acme.example").status_code == 302
    assert signed_in_as(journey.client) == str(jane.pk)
    assert not Membership.objects.filter(user=jane).exists()
    assert "unknown role 'superuser'" in caplog.text


def test_an_unknown_role_in_the_group_map_stops_the_settings(monkeypatch):
    monkeypatch.setenv("OIDC_PROVIDERS", "okta")
    monkeypatch.setenv("OIDC_OKTA_ISSUER", "https://acme.okta.com")
    monkeypatch.setenv("OIDC_OKTA_CLIENT_ID", "0oa1")
    monkeypatch.setenv("OIDC_OKTA_GROUP_MAP", "engineering=research:member,eng=research:superuser")
    with pytest.raises(ImproperlyConfigured, match=r"OIDC_OKTA_GROUP_MAP: 'eng=research:superuser' .*'superuser'"):
        env_oidc_providers()


def test_the_admin_refuses_an_unknown_role(research):
    from django.forms import modelform_factory

    form = modelform_factory(GroupMapping, fields=["provider", "group", "workspace", "role"])(
        {"provider": SLUG, "group": "eng", "workspace": research.pk, "role": "superuser"}
    )
    assert not form.is_valid() and "role" in form.errors


def test_the_stored_address_is_matched_exactly(journey, make_user):
    """An address that only folds to an account's (upper('ı') = 'I' in PostgreSQL) is another address."""
    User.objects.create_user("admin@acme.example", password=PASSWORD)
    journey.provider.add_user("admın@acme.example")
    response = journey.sign_in("admın@acme.example")
    assert response.status_code == 403 and signed_in_as(journey.client) is None
