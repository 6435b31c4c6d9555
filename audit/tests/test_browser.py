"""Page flows in a real browser: staff run the accounts and read the log; a workspace admin reads theirs."""

import pytest

from corporate.models import User
from corporate.tests.browser import screenshot as shot
from corporate.tests.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def test_staff_create_and_deactivate_a_user_then_find_it_in_the_log(browser, live_server, make_user):
    from workspaces.models import Membership, Workspace

    make_user("ops@example.com", password="ops browser secret", full_name="Olga Ops", is_staff=True)
    lead = make_user("lead@example.com", password="lead browser secret", full_name="Lena Lead")
    workspace = Workspace.objects.create(name="Product Team", slug="product")
    Membership.objects.create(workspace=workspace, user=lead, role="owner")

    page = browser.new_page()
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server.url, "ops@example.com", "ops browser secret")
    page.click("nav >> text=People")
    page.wait_for_selector("h1:has-text('People')")
    page.click("text=New user")
    page.fill("input[name=email]", "temp@example.com")
    page.fill("input[name=full_name]", "Tina Temp")
    page.check("input[value=password]")
    page.fill("input[name=password1]", "a temporary secret")
    page.fill("input[name=password2]", "a temporary secret")
    page.click("button:has-text('Create user')")
    page.wait_for_selector("text=temp@example.com was created with the initial password you set.")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Deactivate')")
    page.wait_for_selector("text=temp@example.com is deactivated")
    assert not User.objects.get(email="temp@example.com").is_active
    shot(page, "people-detail.png")

    page.goto(live_server.url + "/people/")
    page.fill("input[name=q]", "e")
    page.click("button:has-text('Search')")
    page.wait_for_selector("text=Tina Temp")
    shot(page, "people-list.png")
    page.set_viewport_size(PHONE)
    shot(page, "people-list-phone.png")
    page.set_viewport_size(DESKTOP)

    page.click("nav >> text=Audit log")
    page.wait_for_selector("h1:has-text('Audit log')")
    page.click("summary:has-text('Filter')")
    page.fill("input[name=actor]", "ops@example.com")
    page.click("button:has-text('Apply')")
    page.wait_for_selector("td:has-text('User deactivated')")
    assert page.locator("td:has-text('User created')").count() == 1
    shot(page, "audit-site.png")
    page.set_viewport_size(PHONE)
    shot(page, "audit-site-phone.png")

    # The workspace owner sees the workspace's log in its tab bar.
    page.context.clear_cookies()
    page.set_viewport_size(DESKTOP)
    sign_in(page, live_server.url, "lead@example.com", "lead browser secret")
    page.goto(live_server.url + "/workspaces/product/")
    page.click("nav.tabs >> text=Audit")
    page.wait_for_selector("td:has-text('Member added')")
    shot(page, "audit-workspace.png")
    page.set_viewport_size(PHONE)
    shot(page, "audit-workspace-phone.png")
    page.close()
