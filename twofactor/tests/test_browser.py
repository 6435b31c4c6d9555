"""Page flows in chromium: enrolling an authenticator app, then the second step at the next sign-in."""

import re

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from corporate.tests.browser import screenshot as shot
from corporate.tests.browser import sign_in
from twofactor.tests.test_twofactor import code_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_enrol_then_the_code_is_asked_at_the_next_sign_in(browser, live_server, make_user):
    user = make_user("jane@example.com", password="jane browser secret", full_name="Jane Roe")
    page = browser.new_page()
    sign_in(page, live_server.url, "jane@example.com", "jane browser secret")
    page.wait_for_selector("text=Welcome, Jane Roe")
    page.goto(live_server.url + "/accounts/2fa/setup/")
    page.wait_for_selector(".qr-code svg")
    shot(page, "2fa-setup.png")
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    page.fill("input[name=code]", code_for(device))
    page.click("button:has-text('Turn on two-factor sign-in')")
    page.wait_for_selector("text=Save your recovery codes")
    assert len(re.findall(r"[0-9a-f]{5}-[0-9a-f]{5}", page.inner_text(".recovery-codes"))) == 10
    page.click("text=I have saved them")
    page.click(".user-menu summary")
    page.click("button:has-text('Sign out')")
    page.wait_for_selector("input[name=password]")

    sign_in(page, live_server.url, "jane@example.com", "jane browser secret")
    page.wait_for_selector("text=One more step")
    shot(page, "2fa-verify.png")
    page.fill("input[name=code]", "000000" if code_for(device, 1) != "000000" else "111111")
    page.click("button:has-text('Verify and sign in')")
    page.wait_for_selector("text=That code is not right")
    page.fill("input[name=code]", code_for(device, offset=1))
    page.click("button:has-text('Verify and sign in')")
    page.wait_for_selector("text=Welcome, Jane Roe")
    page.close()
