"""How pages look and behave in a real browser: colour schemes, type scale, button heights, help text,
the short name filled in from the name, and copy buttons."""

import pytest

from corporate.tests.browser import screenshot, sign_in
from workspaces.models import Invitation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"  # the personas' password (conftest.make_user)


def luminance(css_color):
    """0 (black) … 255 (white) for a computed `rgb(…)`/`rgba(…)` colour."""
    parts = [float(p) for p in css_color[css_color.index("(") + 1 : -1].split(",")[:3]]
    return 0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2]


def page_background(page):
    return luminance(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def choose_scheme(page, label):
    page.click("details.user-menu > summary")
    page.click(f".scheme-switch button:has-text('{label}')")
    page.wait_for_selector(f".scheme-switch button[aria-pressed=true]:has-text('{label}')", state="attached")


def test_colour_scheme_follows_the_system_and_the_choice_is_kept(page, live_server, workspace, owner):
    sign_in(page, live_server.url, owner.email, PASSWORD)
    page.wait_for_selector("text=Welcome")
    page.emulate_media(color_scheme="dark")
    page.reload()
    assert page_background(page) < 60
    assert page.evaluate("document.documentElement.hasAttribute('data-theme')") is False
    page.emulate_media(color_scheme="light")
    assert page_background(page) > 200

    # Light chosen on a dark system: applied at once, kept across reloads and sessions.
    page.emulate_media(color_scheme="dark")
    choose_scheme(page, "Light")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page_background(page) > 200
    page.reload()
    assert page_background(page) > 200
    owner.refresh_from_db()
    assert owner.color_scheme == "light"
    page.context.clear_cookies()
    sign_in(page, live_server.url, owner.email, PASSWORD)
    page.goto(live_server.url + "/workspaces/acme/")
    assert page_background(page) > 200

    # Dark on a light system.
    page.emulate_media(color_scheme="light")
    choose_scheme(page, "Dark")
    page.reload()
    assert page_background(page) < 60
    screenshot(page, "workspace-dark.png")

    # Back to following the system.
    choose_scheme(page, "System")
    page.reload()
    assert page_background(page) > 200
    page.emulate_media(color_scheme="dark")
    assert page_background(page) < 60


def test_favicon_is_served(page, live_server):
    response = page.goto(live_server.url + "/favicon.ico")
    assert response.ok and response.headers["content-type"].startswith("image/svg+xml")


# Buttons that act on a page or a form; small inline buttons (tables, messages, toolbars) are their own size.
ACTION_BUTTONS = """() => [...document.querySelectorAll("main button, main [role=button], main input[type=submit]")]
  .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== "hidden")
  .filter((e) => !e.closest("table, nav, .msg-actions, .conversation-actions, .starters, .invitation-link, .chat-sidebar"))
  .filter((e) => !e.matches(".small-button, .icon-button, .gw-small-button, .link-button, .starter"))
  .map((e) => [e.textContent.trim(), e.getBoundingClientRect().height])"""

H1_SIZES = """() => [...document.querySelectorAll("main h1")]
  .map((e) => [e.textContent.trim(), getComputedStyle(e).fontSize])"""

HELP_TEXT_CLEARANCE = """() => [...document.querySelectorAll("main form small.help-text")]
  .filter((help) => help.getClientRects().length)
  .map((help) => {
    const labels = [...help.closest("form").querySelectorAll("label")].filter(
      (label) => help.compareDocumentPosition(label) & Node.DOCUMENT_POSITION_FOLLOWING && label.getClientRects().length);
    const next = labels[0];
    return [help.textContent.trim().slice(0, 40), help.getBoundingClientRect().bottom,
            next ? next.getBoundingClientRect().top : null];
  })"""


@pytest.fixture
def assistant(workspace, owner):
    from assistants.models import Assistant

    return Assistant.objects.create(workspace=workspace, name="Helpdesk", instructions="Answer.", created_by=owner)


@pytest.fixture
def document(workspace, owner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from documents.ingestion import accept_upload

    return accept_upload(workspace, SimpleUploadedFile("policy.md", b"# Policy\n\nBe kind.", "text/markdown"), owner)


def pages_to_compare(assistant, document):
    return [
        f"/documents/acme/{document.pk}/",
        "/",
        "/workspaces/",
        "/workspaces/new/",
        "/workspaces/acme/",
        "/workspaces/acme/members/",
        "/workspaces/acme/settings/",
        "/documents/acme/",
        "/assistants/acme/",
        "/assistants/acme/new/",
        f"/assistants/acme/{assistant.pk}/edit/",
        "/gateway/acme/keys/",
        "/gateway/acme/usage/",
        "/accounts/password_change/",
    ]


@pytest.mark.parametrize("width", [1280, 390])
def test_headings_and_buttons_are_one_size_everywhere(page, live_server, workspace, owner, assistant, document, width):
    page.set_viewport_size({"width": width, "height": 860})
    sign_in(page, live_server.url, owner.email, PASSWORD)
    page.wait_for_selector("text=Welcome")
    h1_sizes, button_heights = {}, {}
    for path in pages_to_compare(assistant, document):
        page.goto(live_server.url + path)
        for text, size in page.evaluate(H1_SIZES):
            h1_sizes.setdefault(size, []).append(f"{path} {text}")
        for text, height in page.evaluate(ACTION_BUTTONS):
            button_heights.setdefault(round(height), []).append(f"{path} {text}")
    assert len(h1_sizes) == 1, h1_sizes
    assert len(button_heights) == 1, button_heights


@pytest.mark.parametrize("width", [1280, 390])
def test_help_text_never_runs_into_the_next_field(page, live_server, workspace, owner, assistant, width):
    page.set_viewport_size({"width": width, "height": 860})
    sign_in(page, live_server.url, owner.email, PASSWORD)
    page.wait_for_selector("text=Welcome")
    checked = 0
    for path in [
        "/workspaces/new/",
        "/assistants/acme/new/",
        f"/assistants/acme/{assistant.pk}/edit/",
        "/gateway/acme/keys/",
    ]:
        page.goto(live_server.url + path)
        for text, bottom, next_top in page.evaluate(HELP_TEXT_CLEARANCE):
            if next_top is not None:
                checked += 1
                # A visible gap, not merely no overlap: the help belongs to the field above.
                assert next_top - bottom >= 6, (path, text, bottom, next_top)
    assert checked >= 6


def test_short_name_follows_the_name_until_edited(page, live_server, owner):
    sign_in(page, live_server.url, owner.email, PASSWORD)
    page.wait_for_selector("text=Welcome")
    page.goto(live_server.url + "/workspaces/new/")
    page.fill("input[name=name]", "Équipe Données & Recherche 2026!")
    assert page.input_value("input[name=slug]") == "equipe-donnees-recherche-2026"
    page.fill("input[name=slug]", "data")
    page.fill("input[name=name]", "Data Team")
    assert page.input_value("input[name=slug]") == "data"
    # Emptied by hand, it follows the name again.
    page.fill("input[name=slug]", "")
    page.fill("input[name=name]", "Data Team West")
    assert page.input_value("input[name=slug]") == "data-team-west"
    page.click("button:has-text('Create workspace')")
    page.wait_for_url("**/workspaces/data-team-west/**")


def read_clipboard(page):
    return page.evaluate("navigator.clipboard.readText()")


def test_copy_the_new_api_key(page, live_server, workspace, owner):
    from llmgateway.models import ApiKey, hash_key

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server.url, owner.email, PASSWORD)
    page.wait_for_selector("text=Welcome")
    page.goto(live_server.url + "/gateway/acme/keys/")
    page.fill("input[name=name]", "CI pipeline")
    page.click("button:has-text('Create key')")
    page.click("button:has-text('Copy key')")
    page.wait_for_selector("button:has-text('Copied')")
    copied = read_clipboard(page)
    assert copied == page.input_value("#new-key-text")
    assert ApiKey.objects.get(name="CI pipeline").key_hash == hash_key(copied)
    screenshot(page, "new-key.png")


def test_copy_an_invitation_link(page, live_server, workspace, owner):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server.url, owner.email, PASSWORD)
    page.wait_for_selector("text=Welcome")
    page.goto(live_server.url + "/workspaces/acme/members/")
    page.fill("input[name=email]", "new.hire@example.com")
    page.click("button:has-text('Send invitation')")
    page.wait_for_selector("text=Invitation created for new.hire@example.com")
    page.click("button[aria-label='Copy link for new.hire@example.com']")
    invitation = Invitation.objects.get(email="new.hire@example.com")
    assert read_clipboard(page) == live_server.url + invitation.get_accept_url()
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    screenshot(page, "invitation-link.png")
