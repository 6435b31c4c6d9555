"""A new member uploads a real PDF, DOCX and Markdown file through the page, watches them become ready,
searches them and opens a highlighted passage."""

import os

import pytest

from corporate.tests.browser import sign_in
from documents.tests.conftest import MARKDOWN, docx_bytes, pdf_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_upload_watch_ready_search(page, live_server, make_user, tmp_path):
    from workspaces.models import Membership, Workspace

    user = make_user("nina@example.com", password="browser test secret", full_name="Nina New")
    workspace = Workspace.objects.create(name="Brightwater", slug="bw")
    Membership.objects.create(workspace=workspace, user=user, role="member")
    files = {"handbook.pdf": pdf_bytes(), "travel.docx": docx_bytes(), "it-faq.md": MARKDOWN.encode()}
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        paths.append(str(tmp_path / name))

    sign_in(page, live_server.url, "nina@example.com", "browser test secret")
    page.wait_for_selector("h1:has-text('Welcome')")
    page.click(".main-nav >> text=Documents")  # the only workspace: straight to its documents
    page.click("text=Upload the first files")
    # The page's script must be listening before files are chosen (deferred scripts run before "load").
    page.wait_for_load_state("load")
    page.set_input_files("input[type=file]", paths)
    page.wait_for_selector(".upload-ready >> nth=2", timeout=90000)
    states = page.inner_text("[data-upload-queue]")
    assert states.count("Ready:") == 3, states
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "documents-upload.png"), full_page=True)

    page.click("nav.subtabs >> text=All documents")
    assert page.locator("tbody tr").count() == 3
    assert page.locator(".badge-ready").count() == 3

    page.click("nav.subtabs >> text=Search")
    page.fill("main input[name=q]", "meals reimbursed")
    page.press("main input[name=q]", "Enter")
    page.wait_for_selector("article.result")
    assert page.inner_text("article.result .badge") == "page 2"
    assert page.locator("article.result mark").count() >= 2
    page.click("article.result a")
    page.wait_for_selector(".chunk-selected")
    assert "Meals are reimbursed" in page.inner_text(".chunk-selected")
    assert "page 2" in page.inner_text(".chunk-selected header")
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "documents-passage.png"))


@pytest.fixture
def signed_in_member(page, live_server, make_user):
    from workspaces.models import Membership, Workspace

    user = make_user("nina@example.com", password="browser test secret", full_name="Nina New")
    workspace = Workspace.objects.create(name="Brightwater", slug="bw")
    Membership.objects.create(workspace=workspace, user=user, role="member")
    sign_in(page, live_server.url, "nina@example.com", "browser test secret")
    page.wait_for_selector("h1:has-text('Welcome')")
    return workspace


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}])
def test_the_drop_zone_shows_the_keyboard_focus(page, live_server, signed_in_member, viewport):
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/documents/bw/upload/")
    page.wait_for_load_state("load")
    zone = page.locator("[data-dropzone]")
    assert zone.evaluate("z => getComputedStyle(z).outlineStyle") == "none"
    page.locator("input[type=file]").focus()
    assert page.evaluate("document.activeElement.type") == "file"
    ring = zone.evaluate("z => [getComputedStyle(z).outlineStyle, parseFloat(getComputedStyle(z).outlineWidth)]")
    assert ring[0] != "none" and ring[1] >= 2, ring
    if os.environ.get("SCREENSHOT_DIR"):
        name = f"documents-dropzone-focus-{viewport['width']}.png"
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], name))


def test_the_search_box_has_a_label(page, live_server, signed_in_member):
    page.goto(f"{live_server.url}/documents/bw/search/")
    box = page.get_by_label("Words to find")
    assert box.get_attribute("name") == "q"
    # Its name is the label, not the placeholder.
    assert box.evaluate("b => b.labels.length") == 1


FILTER_PIECES = """() => {
    const form = document.querySelector('form.filters');
    const left = form.getBoundingClientRect().left;
    return [...form.querySelectorAll('input, select, button')].map((e) => {
        const s = getComputedStyle(e);
        const corners = [s.borderTopLeftRadius, s.borderTopRightRadius, s.borderBottomLeftRadius, s.borderBottomRightRadius];
        return {name: e.name || e.textContent.trim(), corners: new Set(corners).size, square: corners.includes('0px'),
                outside: e.getBoundingClientRect().left < left - 0.5};
    });
}"""


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}])
def test_the_filter_row_is_separate_rounded_fields(page, live_server, signed_in_member, viewport):
    """Search box, selects and button each keep their own rounded corners, wrapped on a phone or not."""
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/documents/bw/?q=x")
    pieces = page.evaluate(FILTER_PIECES)
    assert len(pieces) == 4, pieces
    odd = [p for p in pieces if p["corners"] != 1 or p["square"] or p["outside"]]
    assert odd == [], odd


def _long_document(workspace, user, passages=10):
    from documents.models import Chunk
    from documents.tests.isolation_endpoints import _document

    document = _document(workspace, "Employee handbook", "ready", uploaded_by=user)
    document.preview = "Welcome to Brightwater.\n" * 40
    document.save(update_fields=["preview"])
    text = "Core hours are 10:00 to 16:00 on working days; plan the rest of your day as suits you and your team. " * 6
    Chunk.objects.bulk_create(
        Chunk(document=document, workspace=workspace, position=n, text=text, start=0, end=len(text), token_estimate=99)
        for n in range(1, passages)
    )
    return document


def test_details_and_rename_come_before_the_passages_on_a_phone(page, live_server, signed_in_member):
    """On a phone the Details and Title cards are on the first screens, not after every passage;
    on a desktop they stay in the right-hand column beside the passages, the text preview under them."""
    from workspaces.models import Membership

    member = Membership.objects.get(workspace=signed_in_member).user
    document = _long_document(signed_in_member, member)
    top = "(s) => document.querySelector(s).getBoundingClientRect().top + scrollY"

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/documents/bw/{document.pk}/")
    rename = page.get_by_role("button", name="Rename")
    assert rename.is_visible()
    assert rename.bounding_box()["y"] < 2 * 844, "Rename is further than two screens down"
    passages = page.evaluate(top, ".doc-passages")
    assert page.evaluate(top, ".doc-side") < passages
    assert page.evaluate(top, ".doc-preview") > passages
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "documents-detail-390.png"), full_page=True)

    page.set_viewport_size({"width": 1280, "height": 800})
    boxes = page.evaluate(
        """() => Object.fromEntries(['.doc-side', '.doc-passages', '.doc-preview'].map(
            (s) => { const r = document.querySelector(s).getBoundingClientRect(); return [s, [r.left, r.top, r.bottom]]; }))"""
    )
    side, passages, preview = boxes[".doc-side"], boxes[".doc-passages"], boxes[".doc-preview"]
    assert side[0] > passages[0] and side[1] == passages[1], boxes
    assert preview[0] == side[0] and side[2] <= preview[1] < side[2] + 40, boxes


def test_an_empty_workspace_shows_no_filters_and_a_phone_says_choose_files(page, live_server, signed_in_member):
    """With no documents there is nothing to filter; a phone cannot drag files, so its drop zone says Choose files."""
    page.goto(f"{live_server.url}/documents/bw/")
    assert page.get_by_text("No documents yet").is_visible()
    assert page.locator("form.filters").count() == 0
    for viewport, shown, hidden in (
        ({"width": 390, "height": 844}, "Choose files", "Drop files here"),
        ({"width": 1280, "height": 800}, "Drop files here", "Choose files"),
    ):
        page.set_viewport_size(viewport)
        page.goto(f"{live_server.url}/documents/bw/upload/")
        zone = page.locator("[data-dropzone]")
        assert zone.get_by_text(shown).is_visible(), viewport
        assert not zone.get_by_text(hidden).is_visible(), viewport
        # The file input's name is what the zone shows.
        assert shown in page.locator("input[type=file]").evaluate("i => i.labels[0].innerText"), viewport
