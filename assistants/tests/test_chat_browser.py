"""The chat page in a real browser: versions, waiting, phones, citations, scrolling, the conversation list."""

import pytest

from corporate.tests.browser import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VACATION = "How many vacation days do I get?"
VPN = "What is the VPN gateway?"


def open_chat(browser, live_server, user, assistant, viewport=None):
    page = browser.new_page()
    if viewport:
        page.set_viewport_size(viewport)
    sign_in(page, live_server.url, user.email, "correct horse battery")
    page.wait_for_selector("text=Welcome")
    page.goto(f"{live_server.url}/assistants/acme/{assistant.pk}/")
    page.wait_for_load_state("load")
    return page


def ask(page, question):
    before = page.locator(".msg-assistant:not(.pending)").count()
    page.fill("textarea[name=question]", question)
    page.click("button[data-send]")
    page.locator(".msg-assistant:not(.pending)").nth(before).wait_for()
    page.wait_for_selector("button[data-send]:not([disabled])")


def test_regenerate_an_earlier_answer_and_switch_versions(browser, live_server, member, assistant):
    page = open_chat(browser, live_server, member, assistant)
    ask(page, VACATION)
    ask(page, VPN)
    first = page.locator(".msg-assistant").first
    first.locator("[data-regenerate]").click()
    page.wait_for_selector(".msg-assistant .version-label")
    page.wait_for_selector("button[data-send]:not([disabled])")

    def transcript():
        return [el.inner_text() for el in page.query_selector_all("#messages > .msg")]

    shown = transcript()
    assert len(shown) == 4
    # The new answer is still the first question's, under it; the second question keeps its own answer.
    assert VACATION in shown[0] and "27 vacation days" in shown[1] and "2/2" in shown[1]
    assert VPN in shown[2] and "vpn" in shown[3].lower() and "2/2" not in shown[3]
    screenshot(page, "chat-versions.png")

    page.reload()
    page.wait_for_load_state("load")
    assert transcript() == shown

    # ‹ shows the first version, and the choice survives a reload.
    page.locator(".msg-assistant").first.locator("[aria-label='Previous version']").click()
    page.wait_for_selector(".msg-assistant >> nth=0 >> .version-label:text('1/2')")
    page.reload()
    page.wait_for_load_state("load")
    assert page.locator(".msg-assistant").first.locator(".version-label").inner_text() == "1/2"
    assert page.locator("#messages > .msg").count() == 4

    # Regenerating the latest answer replaces it (as version 2), with no duplicate at the bottom.
    page.locator(".msg-assistant").nth(1).locator("[data-regenerate]").click()
    page.wait_for_selector(".msg-assistant >> nth=1 >> .version-label:text('2/2')")
    page.reload()
    page.wait_for_load_state("load")
    assert page.locator("#messages > .msg").count() == 4
    page.close()


def test_thinking_is_one_line_while_waiting(browser, live_server, member, assistant):
    page = open_chat(browser, live_server, member, assistant)
    held = []
    # Hold the question's request: the page waits for the first words as long as we like.
    page.route("**/ask/", lambda route: held.append(route))
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    waiting = page.wait_for_selector(".msg-assistant.pending .answer")
    page.wait_for_function(
        "() => document.querySelector('.msg-assistant.pending .answer').innerText.includes('Thinking')"
    )
    box = page.evaluate(
        """() => {
            const answer = document.querySelector('.msg-assistant.pending .answer');
            const thinking = answer.querySelector('.thinking');
            const style = getComputedStyle(thinking);
            const rect = thinking.getBoundingClientRect();
            return {height: rect.height, width: rect.width, fontSize: parseFloat(style.fontSize),
                    line: parseFloat(style.lineHeight), answerHeight: answer.getBoundingClientRect().height};
        }"""
    )
    assert "Thinking…" in waiting.inner_text()
    # One line of words side by side: no taller than a line, wider than several letters.
    assert box["height"] <= box["line"] * 1.2, box
    assert box["width"] >= box["fontSize"] * 4, box
    assert box["answerHeight"] <= box["line"] * 1.5, box
    screenshot(page, "chat-thinking.png")
    for route in held:
        route.abort()
    page.close()


PHONE = {"width": 390, "height": 844}


def overflow(page, selector="html"):
    """Elements under `selector` that reach past the right edge of the viewport."""
    return page.evaluate(
        """(selector) => {
            const wide = [];
            document.querySelectorAll(selector + ' *').forEach((el) => {
                const r = el.getBoundingClientRect();
                if (r.width && r.right > window.innerWidth + 1) wide.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
            });
            return wide.slice(0, 10);
        }""",
        selector,
    )


def test_chat_on_a_phone(browser, live_server, member, assistant):
    page = open_chat(browser, live_server, member, assistant, viewport=PHONE)
    ask(page, VACATION)
    ask(page, VPN)
    ask(page, "Are meals reimbursed when travelling?")
    assert overflow(page, "html") == []
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")

    # The conversation list waits behind a button.
    toggle = page.locator("[data-toggle-conversations]")
    assert toggle.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    assert not page.locator(".conversation-list").is_visible()
    screenshot(page, "chat-phone.png")

    # Scrolled to the end, nothing of the sidebar covers a message.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    covered = page.evaluate(
        """() => {
            const side = document.querySelector('.chat-sidebar').getBoundingClientRect();
            return Array.from(document.querySelectorAll('#messages .msg')).filter((m) => {
                const r = m.getBoundingClientRect();
                return r.bottom > 0 && r.top < innerHeight && r.top < side.bottom && r.bottom > side.top;
            }).length;
        }"""
    )
    assert covered == 0

    page.evaluate("window.scrollTo(0, 0)")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    assert page.locator(".conversation-list a").first.is_visible()
    assert overflow(page, "main") == []
    screenshot(page, "chat-phone-conversations.png")
    page.close()


def test_citation_markers_open_the_passage_beside_the_chat(browser, live_server, member, assistant):
    page = open_chat(browser, live_server, member, assistant)
    for question in (VACATION, VPN, "Are meals reimbursed when travelling?", VACATION + " Really?"):
        ask(page, question)
    url = page.url
    page.evaluate("window.scrollTo(0, 200)")
    before = page.evaluate("window.scrollY")
    marker = page.locator(".msg-assistant").first.locator("a.cite").first
    marker.click()
    panel = page.wait_for_selector("#citation-panel:not([hidden]) .passage-text mark")
    assert "27 vacation days" in panel.inner_text()
    # The chat stayed where it was.
    assert page.url == url
    assert page.evaluate("window.scrollY") == before
    box = page.locator("#citation-panel").bounding_box()
    assert box["x"] > 600 and box["height"] >= 700
    screenshot(page, "chat-citation-panel.png")
    page.keyboard.press("Escape")
    page.wait_for_selector("#citation-panel", state="hidden")
    page.close()


def test_citation_markers_open_a_new_tab_on_a_phone(browser, live_server, member, assistant):
    page = open_chat(browser, live_server, member, assistant, viewport=PHONE)
    ask(page, VACATION)
    url = page.url
    with browser.expect_page() as opened:
        page.locator("a.cite").first.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert "/sources/1/" in tab.url
    assert "27 vacation days" in tab.locator(".passage-text mark").first.inner_text()
    assert page.url == url
    tab.set_viewport_size(PHONE)
    screenshot(tab, "citation-phone.png")
    tab.close()
    page.close()


def long_conversation(member, assistant, turns=15):
    from assistants.models import Conversation, Message

    conversation = Conversation.objects.create(assistant=assistant, user=member, title="Long")
    for i in range(turns):
        q = Message.objects.create(conversation=conversation, role="user", content=f"Question {i}?")
        Message.objects.create(
            conversation=conversation, role="assistant", question=q, content=f"Answer {i}.\n\n" + "Some text. " * 40
        )
    return conversation


AT_BOTTOM = "() => innerHeight + scrollY >= document.documentElement.scrollHeight - 48"
ABOVE_BOTTOM = "() => innerHeight + scrollY < document.documentElement.scrollHeight - 48"


def test_opening_a_conversation_shows_the_latest_message(browser, live_server, member, assistant):
    conversation = long_conversation(member, assistant)
    page = open_chat(browser, live_server, member, assistant)
    page.goto(live_server.url + conversation.get_absolute_url())
    page.wait_for_load_state("load")
    page.wait_for_function(AT_BOTTOM)
    assert page.locator(".msg-assistant").last.is_visible()
    assert page.evaluate("scrollY") > 1000
    page.close()


def test_streamed_answer_keeps_the_view_at_the_bottom_unless_scrolled_up(browser, live_server, member, assistant):
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    upstream = FakeOpenAI(chunk_delay=0.03).start()
    try:
        ModelConfig.objects.create(
            name="slow", provider="openai-compatible", base_url=upstream.base_url, upstream_model="s", max_retries=0
        )
        assistant.model_name = "slow"
        assistant.save()
        conversation = long_conversation(member, assistant)
        page = open_chat(browser, live_server, member, assistant)
        page.goto(live_server.url + conversation.get_absolute_url())
        page.wait_for_load_state("load")
        page.wait_for_function(AT_BOTTOM)

        # Following: the answer grows and the view stays at its end.
        page.fill("textarea[name=question]", "Tell me everything about vacation days. " * 8)
        page.click("button[data-send]")
        page.wait_for_function("() => document.querySelector('.pending .answer').innerText.length > 300")
        assert page.evaluate(AT_BOTTOM)
        page.wait_for_selector("button[data-send]:not([disabled])", timeout=30000)
        assert page.evaluate(AT_BOTTOM)

        # Scrolled up while it streams: the view stays where the reader put it.
        page.fill("textarea[name=question]", "And what about the expenses for meals? " * 8)
        page.click("button[data-send]")
        page.wait_for_function("() => document.querySelector('.pending .answer').innerText.length > 100")
        page.mouse.wheel(0, -600)
        page.wait_for_function(ABOVE_BOTTOM)
        where = page.evaluate("scrollY")
        page.wait_for_selector("button[data-send]:not([disabled])", timeout=30000)
        assert abs(page.evaluate("scrollY") - where) < 5
        assert not page.evaluate(AT_BOTTOM)
        page.close()
    finally:
        upstream.stop()


def test_counter_near_the_limit_and_a_refused_question_stays(browser, live_server, member, assistant):
    from assistants.models import MAX_QUESTION_CHARS

    page = open_chat(browser, live_server, member, assistant)
    counter = page.locator(".char-count")
    page.fill("textarea[name=question]", "Short question?")
    assert not counter.is_visible()
    page.fill("textarea[name=question]", "x" * int(MAX_QUESTION_CHARS * 0.9))
    assert counter.is_visible()
    assert counter.inner_text() == f"{int(MAX_QUESTION_CHARS * 0.9):,} / {MAX_QUESTION_CHARS:,}"
    too_long = "Why? " * (MAX_QUESTION_CHARS // 5 + 10)
    page.fill("textarea[name=question]", too_long)
    assert "over the limit" in counter.inner_text()
    assert "over" in counter.get_attribute("class")
    screenshot(page, "chat-counter.png")
    # The server refuses it: the reason shows, the text stays.
    page.click("button[data-send]")
    error = page.wait_for_selector(".ask-error:not([hidden])")
    assert "too long" in error.inner_text() and str(MAX_QUESTION_CHARS) in error.inner_text()
    assert page.input_value("textarea[name=question]") == too_long
    assert counter.is_visible()

    # A refusal the page cannot foresee (the assistant was archived meanwhile) also keeps the text.
    assistant.archived = True
    assistant.save()
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    page.wait_for_function("() => document.querySelector('.ask-error').innerText.includes('archived')")
    assert page.input_value("textarea[name=question]") == VACATION
    assert page.locator(".msg-user").count() == 0
    page.close()


def test_conversation_list_rename_pin_search_export_delete(browser, live_server, member, assistant):
    from assistants.models import Conversation

    long_conversation(member, assistant, turns=2)
    page = open_chat(browser, live_server, member, assistant)
    ask(page, VACATION)
    # The new conversation's bar and list entry come with its first answer, without a reload.
    assert page.locator(".conversation-list a[aria-current=page]").inner_text().startswith(VACATION)
    page.click(".conversation-actions >> text=Rename")
    page.fill("input[name=title]", "My vacation")
    page.click("button[type=submit]:text('Save')")
    page.wait_for_selector(".conversation-name:text('My vacation')")
    page.click(".conversation-actions >> text=Pin")
    page.wait_for_selector(".conversation-list .conversation-group:text('Pinned')")
    assert page.locator(".conversation-list a").first.inner_text().startswith("My vacation")
    with page.expect_download() as download:
        page.click(".conversation-actions >> text=Export Markdown")
    assert download.value.suggested_filename == "my-vacation.md"
    screenshot(page, "chat-conversations.png")
    page.set_viewport_size(PHONE)
    page.click("[data-toggle-conversations]")
    screenshot(page, "chat-conversations-phone.png")
    page.set_viewport_size({"width": 1280, "height": 860})

    page.fill(".conversation-search input[name=q]", "vacation")
    page.press(".conversation-search input[name=q]", "Enter")
    page.wait_for_selector(".conversation-list >> text=1 found")

    page.click(".conversation-list a:has-text('My vacation')")
    page.click(".conversation-actions >> text=Delete")
    page.wait_for_selector("text=Delete “My vacation”?")
    screenshot(page, "chat-delete-confirm.png")
    page.click("button:text('Delete conversation')")
    page.wait_for_selector("text=Conversation deleted.")
    assert list(Conversation.objects.values_list("title", flat=True)) == ["Long"]
    page.close()


def test_starter_question_is_asked_on_click(browser, live_server, member, assistant):
    assistant.starter_questions = [VACATION, VPN]
    assistant.save()
    page = open_chat(browser, live_server, member, assistant)
    screenshot(page, "chat-starters.png")
    page.set_viewport_size(PHONE)
    screenshot(page, "chat-starters-phone.png")
    page.set_viewport_size({"width": 1280, "height": 860})
    page.click(f"button.starter:text('{VACATION}')")
    answer = page.wait_for_selector(".msg-assistant:not(.pending) .answer")
    assert "27 vacation days" in answer.inner_text()
    assert page.locator(".msg-user").inner_text() == VACATION
    assert page.locator(".starter").count() == 0
    page.close()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}])
def test_a_long_conversation_opens_at_its_latest_messages(browser, live_server, member, assistant, viewport):
    from assistants.models import Conversation, Message

    conversation = Conversation.objects.create(assistant=assistant, user=member, title="A long one")
    for i in range(40):
        question = Message.objects.create(conversation=conversation, role="user", content=f"Question {i}?")
        Message.objects.create(
            conversation=conversation, role="assistant", question=question, content=f"**Answer {i}.**"
        )
    page = open_chat(browser, live_server, member, assistant, viewport)
    page.goto(f"{live_server.url}{conversation.get_absolute_url()}")
    page.wait_for_load_state("load")
    assert page.locator("#messages > .msg").count() == 50
    assert "Question 39?" in page.inner_text("#messages") and "Question 14?" not in page.inner_text("#messages")
    screenshot(page, f"chat-latest-{viewport['width']}.png")
    page.click("text=Show earlier messages")
    page.wait_for_selector("text=Show the latest messages")
    shown = page.inner_text("#messages")
    assert "Question 0?" in shown and "Question 14?" in shown and "Question 15?" not in shown
    screenshot(page, f"chat-earlier-{viewport['width']}.png")
    page.click("text=Show the latest messages")
    page.wait_for_selector("text=Question 39?")


# Words of the cells of the answers' tables that are broken over two lines.
BROKEN_CELL_WORDS = """() => {
    const broken = [];
    for (const cell of document.querySelectorAll('.answer :is(th, td)')) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const match of node.data.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                if (lines.size > 1) broken.push(match[0]);
            }
        }
    }
    return broken;
}"""

WIDE_TABLE = (
    "| City | Hotel limit (EUR/night) | Meal allowance (EUR/day) | Taxi cap | Approval needed from | Receipts |\n"
)
WIDE_TABLE += "|---|---|---|---|---|---|\n"
for _city in ("Lisbon", "Frankfurt am Main", "Singapore"):
    WIDE_TABLE += f"| {_city} | 180 | 55 | 40 | Line manager and finance business partner | Itemised invoice |\n"


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, PHONE])
def test_a_wide_table_in_an_answer_scrolls_and_keeps_its_words_whole(browser, live_server, member, assistant, viewport):
    from assistants.models import Conversation, Message

    conversation = Conversation.objects.create(assistant=assistant, user=member, title="Travel limits")
    question = Message.objects.create(conversation=conversation, role="user", content="Travel limits per city?")
    content = "The travel limits per city:\n\n" + WIDE_TABLE
    Message.objects.create(conversation=conversation, role="assistant", question=question, content=content)
    page = open_chat(browser, live_server, member, assistant, viewport)
    page.goto(f"{live_server.url}{conversation.get_absolute_url()}")
    page.wait_for_load_state("load")
    table = page.locator(".answer table")
    assert "Frankfurt" in table.inner_text()
    assert page.evaluate(BROKEN_CELL_WORDS) == []
    # Wider than the bubble, the table scrolls inside it; the page does not.
    scroll, client = table.evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert scroll > client, (scroll, client)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    screenshot(page, f"chat-wide-table-{viewport['width']}.png")
    page.close()


# Controls smaller than a finger (44 px high, 40 px wide), by their text.
SMALL_TARGETS = """(selector) => [...document.querySelectorAll(selector)]
    .filter((e) => e.offsetParent)
    .map((e) => [e.textContent.trim() || e.title, e.getBoundingClientRect()])
    .filter(([, r]) => Math.round(r.height) < 44 || Math.round(r.width) < 40)
    .map(([text, r]) => `${text}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""


def test_chat_controls_are_big_enough_to_tap_on_a_phone(browser, live_server, member, assistant):
    page = open_chat(browser, live_server, member, assistant, viewport=PHONE)
    ask(page, VACATION)
    page.reload()
    page.wait_for_load_state("load")
    controls = ".conversation-actions .icon-button, .msg-actions button, a.cite, [data-toggle-conversations]"
    assert page.locator("a.cite").count() and page.locator(".msg-actions button").count() >= 4
    assert page.evaluate(SMALL_TARGETS, controls) == []
    page.locator("[data-toggle-conversations]").click()
    assert page.evaluate(SMALL_TARGETS, ".chat-sidebar .small-button") == []
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    screenshot(page, "chat-phone-targets.png")
    page.close()


@pytest.fixture
def scripted(assistant):
    """The assistant answers through a local upstream that a test slows down or cuts off."""
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    upstream = FakeOpenAI().start()
    ModelConfig.objects.create(
        name="scripted", provider="openai-compatible", base_url=upstream.base_url, upstream_model="s", max_retries=0
    )
    assistant.model_name = "scripted"
    assistant.save()
    yield upstream
    upstream.stop()


def _cut_short_answer_matches_a_reload(page, name):
    """The answer cut short becomes the stored message: the one a reload shows, with its buttons."""
    answer = page.locator(".msg-assistant:not(.pending)")
    answer.locator("[data-regenerate]").wait_for(timeout=15000)
    assert answer.count() == 1 and page.locator(".pending").count() == 0
    assert answer.get_attribute("data-message")
    assert answer.locator("[data-copy]").is_visible()
    assert answer.locator(".interrupted .badge").inner_text() == "interrupted"
    live = answer.inner_text()
    assert live.startswith("Echo:"), live
    screenshot(page, name)
    page.reload()
    page.wait_for_load_state("load")
    assert page.locator(".msg-assistant").inner_text() == live


def test_a_stopped_answer_is_shown_as_a_reload_shows_it(browser, live_server, member, assistant, scripted):
    scripted.chunk_delay = 0.05
    page = open_chat(browser, live_server, member, assistant)
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    page.wait_for_function("() => document.querySelector('.pending .answer').innerText.startsWith('Echo:')")
    page.click("button[data-stop]")
    _cut_short_answer_matches_a_reload(page, "chat-stopped.png")
    assert "stopped" not in page.locator(".msg-assistant").inner_text()
    page.close()


def test_an_answer_cut_off_by_the_model_is_shown_as_a_reload_shows_it(
    browser, live_server, member, assistant, scripted
):
    scripted.script("cut")  # two words, then the stream ends unfinished
    page = open_chat(browser, live_server, member, assistant)
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    _cut_short_answer_matches_a_reload(page, "chat-cut-off.png")
    # Regenerate works on it at once, as on the stored message it is.
    page.locator(".msg-assistant [data-regenerate]").click()
    page.wait_for_selector(".msg-assistant .version-label:text('2/2')")
    page.close()
