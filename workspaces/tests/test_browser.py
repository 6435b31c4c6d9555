import re

import pytest
from django.core import mail

from corporate.tests.browser import screenshot as shot
from corporate.tests.browser import sign_in
from workspaces.models import Membership

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_invite_accept_and_change_role(browser, live_server, make_user):
    make_user("lead@example.com", password="lead browser secret", full_name="Lena Lead")
    make_user("hire@example.com", password="hire browser secret", full_name="Hugo Hire")

    lead = browser.new_page()
    sign_in(lead, live_server.url, "lead@example.com", "lead browser secret")
    lead.wait_for_selector("text=Welcome, Lena Lead")
    lead.goto(live_server.url + "/workspaces/new/")
    lead.fill("input[name=name]", "Product Team")
    lead.fill("input[name=slug]", "product")
    lead.fill("textarea[name=description]", "Specs, roadmaps and the product assistant.")
    lead.click("button:has-text('Create workspace')")
    lead.wait_for_selector("text=Invite someone")

    lead.fill("input[name=email]", "hire@example.com")
    lead.select_option("select#id_role", "viewer")
    lead.click("button:has-text('Send invitation')")
    lead.wait_for_selector("text=Invitation created for hire@example.com")
    shot(lead, "members.png")

    link = re.search(r"https?://\S+/workspaces/invitations/\S+/", mail.outbox[-1].body).group(0)
    lead.context.clear_cookies()

    # The invitee opens the link in another browser session; the lead's cookies are gone.
    hire = lead
    hire.goto(link)
    hire.fill("input[name=username]", "hire@example.com")
    hire.fill("input[name=password]", "hire browser secret")
    hire.click("button[type=submit]")
    hire.wait_for_selector("text=You joined Product Team through your invitation.")
    assert Membership.objects.get(workspace__slug="product", user__email="hire@example.com").role == "viewer"
    shot(hire, "workspace-overview.png")

    hire.context.clear_cookies()
    sign_in(hire, live_server.url, "lead@example.com", "lead browser secret")
    hire.goto(live_server.url + "/workspaces/product/members/")
    hire.select_option("select[aria-label='Role of hire@example.com']", "member")
    hire.click("tr:has-text('hire@example.com') button:has-text('Change')")
    hire.wait_for_selector("text=Hugo Hire is now member")
    assert Membership.objects.get(workspace__slug="product", user__email="hire@example.com").role == "member"

    hire.goto(live_server.url + "/workspaces/")
    shot(hire, "workspaces.png")
    assert "Product Team" in hire.inner_text("main")
    hire.close()
