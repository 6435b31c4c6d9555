"""In chromium: the sign-in button, the provider's page, and landing in the workspaces the groups map to."""

import pytest

from corporate.tests.browser import screenshot as shot
from sso.models import GroupMapping
from sso.tests.oidc_provider import CLIENT_ID, CLIENT_SECRET
from workspaces.models import Membership, Workspace
from workspaces.roles import Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_through_the_provider_lands_in_the_mapped_workspaces(
    browser, live_server, oidc_server, make_user, settings, monkeypatch
):
    settings.OIDC_AUTO_CREATE = True
    settings.OIDC_ALLOWED_DOMAINS = ["acme.example"]
    monkeypatch.setenv("OIDC_ACME_CLIENT_SECRET", CLIENT_SECRET)
    settings.OIDC_PROVIDERS = [
        {
            "slug": "acme",
            "name": "Acme ID",
            "issuer": oidc_server.issuer,
            "client_id": CLIENT_ID,
            "secret_env": "OIDC_ACME_CLIENT_SECRET",
            "scopes": ["openid", "email", "profile"],
            "groups_claim": "groups",
            "group_map": [["engineering", "research", "member"]],
            "allowed_domains": [],
        }
    ]
    oidc_server.register_client([live_server.url + "/accounts/sso/acme/callback/"])
    oidc_server.misbehave("")
    owner = make_user("owner@acme.example")
    research = Workspace.objects.create(name="Research", slug="research", created_by=owner)
    handbook = Workspace.objects.create(name="Handbook", slug="handbook", created_by=owner)
    for ws in (research, handbook):
        Membership.objects.create(workspace=ws, user=owner, role=Role.OWNER)
    GroupMapping.objects.create(provider="acme", group="everyone", workspace=handbook, role=Role.VIEWER)
    oidc_server.add_user("sam@acme.example", "sam idp secret", name="Sam Field", groups=["engineering", "everyone"])

    page = browser.new_page()
    page.goto(live_server.url + "/accounts/login/")
    shot(page, "sso-sign-in.png")
    page.click("button:has-text('Sign in with Acme ID')")
    page.wait_for_selector("#idp-sign-in")
    page.fill("input[name=username]", "sam@acme.example")
    page.fill("input[name=password]", "sam idp secret")
    page.click("#idp-sign-in")
    page.wait_for_selector("text=Welcome, Sam Field")
    page.goto(live_server.url + "/workspaces/")
    page.wait_for_selector("text=Research")
    assert "Handbook" in page.inner_text("main")
    roles = dict(Membership.objects.filter(user__email="sam@acme.example").values_list("workspace__slug", "role"))
    assert roles == {"research": Role.MEMBER, "handbook": Role.VIEWER}
    page.close()
