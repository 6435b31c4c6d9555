import pytest

from corporate.tests.browser import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_in_reaches_dashboard(page, live_server, make_user, tmp_path):
    make_user("carol@example.com", password="browser test secret", full_name="Carol Browser")
    sign_in(page, live_server.url, "carol@example.com", "wrong password")
    assert "do not match an account" in page.inner_text(".form-errors")

    sign_in(page, live_server.url, "carol@example.com", "browser test secret")
    page.wait_for_selector("h1:has-text('Welcome, Carol Browser')")
    assert page.url.rstrip("/") == live_server.url
    # The stylesheet loaded: the header is laid out by Pico, not unstyled.
    assert (
        page.eval_on_selector("header.site-header", "e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
    )
    screenshot(page, "dashboard.png")

    page.click("details.user-menu summary")
    page.click("text=Sign out")
    page.wait_for_selector("h2:has-text('Sign in')")
    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url
