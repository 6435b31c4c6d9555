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


def test_api_docs_render_under_the_content_security_policy(page, live_server, make_user):
    make_user("dev@example.com", password="browser test secret")
    sign_in(page, live_server.url, "dev@example.com", "browser test secret")
    page.wait_for_selector("text=Welcome")
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(live_server.url + "/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Corporate AI workspace API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector("text=/api/workspaces/")
    assert not [e for e in errors if "Content Security Policy" in e]
    screenshot(page, "api-docs.png")
