import pytest

from corporate.tests.browser import screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_ask_stream_cite_and_ask_again(browser, live_server, member, workspace, assistant):
    page = browser.new_page()
    sign_in(page, live_server.url, member.email, "correct horse battery")
    page.wait_for_selector("text=Welcome")
    page.goto(f"{live_server.url}/assistants/acme/")
    page.click("text=Helpdesk")
    # chat.js must be listening before the question is sent.
    page.wait_for_load_state("load")
    page.fill("textarea[name=question]", "How many vacation days do I get?")
    page.click("button[data-send]")
    answer = page.wait_for_selector(".msg-assistant:not(.pending) .answer")
    assert "27 vacation days" in answer.inner_text()
    assert "/c/" in page.url  # the page now shows the conversation's address
    citation = page.locator(".citations a").first
    assert "handbook" in citation.inner_text().lower()
    screenshot(page, "chat.png")

    # Asking the same again in the same conversation comes from the cache.
    page.fill("textarea[name=question]", "How many vacation days do I get?")
    page.click("button[data-send]")
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

    page = browser.new_page()
    sign_in(page, live_server.url, member.email, "correct horse battery")
    page.wait_for_selector("text=Welcome")
    page.goto(f"{live_server.url}/assistants/acme/{assistant.pk}/")
    page.wait_for_load_state("load")
    question = "Why? " * (MAX_QUESTION_CHARS // 5 + 10)
    page.fill("textarea[name=question]", question)
    page.click("button[data-send]")
    error = page.wait_for_selector(".ask-error:not([hidden])")
    assert "too long" in error.inner_text()
    # Nothing typed is lost, and no half-made question or answer is left on the page.
    assert page.input_value("textarea[name=question]") == question
    assert page.locator(".msg-user").count() == 0
    assert page.locator(".msg-assistant.pending").count() == 0
    assert not Conversation.objects.exists()
    screenshot(page, "chat-too-long.png")
    page.close()
