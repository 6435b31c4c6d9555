import pytest

from corporate.tests.browser import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _signed_in(browser, live_server, member):
    """A new page with the member signed in."""
    page = browser.new_page()
    sign_in(page, live_server.url, member.email, "correct horse battery")
    page.wait_for_selector("text=Welcome")
    return page


def _send(page, question):
    page.fill("textarea[name=question]", question)
    page.click("button[data-send]")


def test_ask_stream_cite_and_ask_again(browser, live_server, member, workspace, assistant):
    page = _signed_in(browser, live_server, member)
    page.goto(f"{live_server.url}/assistants/acme/")
    page.click("text=Helpdesk")
    # chat.js must be listening before the question is sent.
    page.wait_for_load_state("load")
    _send(page, "How many vacation days do I get?")
    answer = page.wait_for_selector(".msg-assistant:not(.pending) .answer")
    assert "27 vacation days" in answer.inner_text()
    assert "/c/" in page.url  # the page now shows the conversation's address
    citation = page.locator(".citations a").first
    assert "handbook" in citation.inner_text().lower()
    screenshot(page, "chat.png")

    # Asking the same again in the same conversation comes from the cache.
    _send(page, "How many vacation days do I get?")
    page.locator(".msg-assistant:not(.pending)").nth(1).wait_for()
    assert page.locator(".msg-assistant").nth(1).locator(".badge-ok").inner_text() == "cached"

    # Thumbs up is recorded without a reload.
    page.locator(".msg-assistant").first.locator("button[title=Helpful]").click()
    page.wait_for_selector(".msg-assistant >> nth=0 >> button.chosen[title=Helpful]")

    # The citation opens the document at the quoted passage.
    citation.click()
    page.wait_for_load_state()
    assert "/documents/acme/" in page.url
    screenshot(page, "citation.png")
    page.close()


def test_over_long_question_is_refused_and_stays_in_the_box(browser, live_server, member, workspace, assistant):
    from assistants.models import MAX_QUESTION_CHARS, Conversation

    page = _signed_in(browser, live_server, member)
    page.goto(f"{live_server.url}/assistants/acme/{assistant.pk}/")
    page.wait_for_load_state("load")
    question = "Why? " * (MAX_QUESTION_CHARS // 5 + 10)
    _send(page, question)
    error = page.wait_for_selector(".ask-error:not([hidden])")
    assert "too long" in error.inner_text()
    # Nothing typed is lost, and no half-made question or answer is left on the page.
    assert page.input_value("textarea[name=question]") == question
    assert page.locator(".msg-user").count() == 0
    assert page.locator(".msg-assistant.pending").count() == 0
    assert not Conversation.objects.exists()
    screenshot(page, "chat-too-long.png")
    page.close()


NORTHWIND = """# Northwind Employee Handbook

Welcome to Northwind. This handbook says how we work, what we offer and whom to ask.

## Time off

### Vacation

You get 25 vacation days a year, plus the public holidays of the country you live in. Plan longer
holidays with your team at least a month ahead.

### Sabbatical

Every three years you can take a paid sabbatical of up to six weeks. Tell your manager three months
before it starts, so that your work can be handed over.

## Equipment

### Home office

You can spend up to 1,500 euros on a desk, a chair and a screen for working from home. Keep the
receipts and file them as an expense.
"""


def test_a_new_user_uploads_a_handbook_and_gets_the_fact_with_its_section(browser, live_server, member, workspace):
    """The whole way a newcomer takes: upload a handbook on the page, ask in their own words, get the fact
    and the section it came from."""
    from assistants.models import Assistant

    Assistant.objects.create(workspace=workspace, name="People desk", created_by=member)
    page = _signed_in(browser, live_server, member)
    page.goto(f"{live_server.url}/documents/acme/upload/")
    page.wait_for_load_state("load")
    page.set_input_files(
        "input[type=file]", files=[{"name": "handbook.md", "mimeType": "text/markdown", "buffer": NORTHWIND.encode()}]
    )
    page.wait_for_selector(".upload-ready", timeout=90000)

    page.goto(f"{live_server.url}/assistants/acme/")
    page.click("text=People desk")
    page.wait_for_load_state("load")
    _send(page, "How often can I take a long paid break of several weeks?")
    answer = page.wait_for_selector(".msg-assistant:not(.pending) .answer")
    assert "Every three years" in answer.inner_text(), answer.inner_text()
    source = page.locator(".citations a").first.inner_text()
    assert "Northwind Employee Handbook" in source and "Sabbatical" in source, source  # its title and section
    screenshot(page, "handbook-answer.png")
    page.close()


def test_try_it_numbers_its_sources_as_the_answer_cites_them(browser, live_server, member, workspace, assistant):
    """The edit page's "Try it": the answer's [n] markers link to the passages, listed under it with the same numbers."""
    page = _signed_in(browser, live_server, member)
    for size in ({"width": 1280, "height": 800}, {"width": 390, "height": 844}):
        page.set_viewport_size(size)
        page.goto(f"{live_server.url}/assistants/acme/{assistant.pk}/edit/")
        page.get_by_label("Question to try").fill("How many vacation days do I get?")
        page.click(".try-box button[type=submit]")
        page.wait_for_selector("#try-result .answer")
        markers = page.evaluate(
            "[...document.querySelectorAll('#try-result .answer a.cite')].map(a => [a.textContent, a.href])"
        )
        sources = page.evaluate(
            """[...document.querySelectorAll('#try-result .citations li')].map(li => [
                getComputedStyle(li).display, li.value, li.querySelector('a').href])"""
        )
        assert markers and sources, (markers, sources)
        # Every source shows its number, and each marker leads where the source of that number does.
        assert all(display == "list-item" for display, _, _ in sources), sources
        by_number = {value: href for _, value, href in sources}
        for text, href in markers:
            assert by_number[int(text.strip("[]"))] == href, (text, href, by_number)
        screenshot(page, f"try-it-{size['width']}.png")
    page.close()
