"""A question the gateway refuses, in the chat page: the question goes back into the box, and the page says why."""

import pytest

from assistants.tests.test_chat_browser import PHONE, ask, open_chat, overflow
from corporate.tests.browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VACATION = "How many vacation days do I get?"
SICK = "And how many sick days do I get?"


@pytest.mark.parametrize(
    "viewport, name", [({"width": 1280, "height": 800}, "chat-limit.png"), (PHONE, "chat-limit-phone.png")]
)
def test_a_question_refused_at_a_limit_goes_back_into_the_box(
    browser, live_server, member, workspace, assistant, viewport, name
):
    from llmgateway.models import Limit

    Limit.objects.create(kind="workspace", workspace=workspace, rpm=1)
    page = open_chat(browser, live_server, member, assistant, viewport=viewport)
    ask(page, VACATION)

    page.fill("textarea[name=question]", SICK)
    page.click("button[data-send]")
    error = page.wait_for_selector(".ask-error:not([hidden])")
    page.wait_for_selector("button[data-send]:not([disabled])")
    message = error.inner_text()
    # It names the limit and when to ask again.
    assert "Your quota is reached" in message and "1 request per minute" in message, message
    assert "ask again in" in message, message
    # The question is back in the box, ready to send again; the conversation shows it as the server keeps it.
    assert page.input_value("textarea[name=question]") == SICK
    assert page.locator(".msg-user").all_inner_texts() == [VACATION, SICK]
    assert page.locator(".msg-assistant").count() == 1
    assert page.locator(".pending").count() == 0
    assert overflow(page) == []
    screenshot(page, name)
    page.close()


@pytest.fixture
def flaky(assistant):
    """The assistant answers through a local upstream that the test scripts to fail."""
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    upstream = FakeOpenAI().start()
    ModelConfig.objects.create(
        name="flaky", provider="openai-compatible", base_url=upstream.base_url, upstream_model="f", max_retries=0
    )
    assistant.model_name = "flaky"
    assistant.save()
    yield upstream
    upstream.stop()


@pytest.mark.parametrize("viewport, suffix", [({"width": 1280, "height": 800}, ""), (PHONE, "-phone")])
def test_an_upstream_failure_before_any_text_puts_the_question_back_and_leaves_no_answer(
    browser, live_server, member, assistant, flaky, viewport, suffix
):
    page = open_chat(browser, live_server, member, assistant, viewport=viewport)
    flaky.script(500)
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    error = page.wait_for_selector(".ask-error:not([hidden])")
    page.wait_for_selector("button[data-send]:not([disabled])")
    assert "could not be produced" in error.inner_text() and "partial" not in error.inner_text()
    assert page.input_value("textarea[name=question]") == VACATION
    assert page.locator(".msg-user").all_inner_texts() == [VACATION]
    assert page.locator(".msg-assistant").count() == 0
    assert overflow(page) == []
    screenshot(page, f"chat-upstream-failed{suffix}.png")
    # A reload shows what the page showed: the question, no empty answer.
    page.reload()
    page.wait_for_load_state("load")
    assert page.locator(".msg-user").all_inner_texts() == [VACATION]
    assert page.locator(".msg-assistant").count() == 0
    page.close()


@pytest.mark.parametrize("viewport, suffix", [({"width": 1280, "height": 800}, ""), (PHONE, "-phone")])
def test_an_upstream_failure_mid_answer_keeps_the_partial_answer_live_and_after_a_reload(
    browser, live_server, member, assistant, flaky, viewport, suffix
):
    page = open_chat(browser, live_server, member, assistant, viewport=viewport)
    flaky.script("cut")  # two words, then the stream ends unfinished
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    page.wait_for_selector(".msg-assistant .interrupted")
    page.wait_for_selector("button[data-send]:not([disabled])")
    live = page.locator(".msg-assistant").inner_text()
    assert live.startswith("Echo:") and "The partial answer was kept" in live, live
    assert page.input_value("textarea[name=question]") == ""
    assert overflow(page) == []
    screenshot(page, f"chat-upstream-partial{suffix}.png")
    note = page.locator(".msg-assistant .interrupted").inner_text()
    assert note.startswith("interrupted ") and "The partial answer was kept" in note, note
    page.reload()
    page.wait_for_load_state("load")
    assert page.locator(".msg-assistant .interrupted").inner_text() == note
    assert overflow(page) == []
    assert page.locator(".msg-assistant .answer").inner_text() in live
    screenshot(page, f"chat-upstream-partial-reloaded{suffix}.png")
    page.close()


@pytest.mark.parametrize("viewport, suffix", [({"width": 1280, "height": 800}, ""), (PHONE, "-phone")])
def test_stop_before_the_first_words_puts_the_question_back_into_the_box(
    browser, live_server, member, assistant, flaky, viewport, suffix
):
    page = open_chat(browser, live_server, member, assistant, viewport=viewport)
    flaky.script("hang")  # no word comes until the test ends
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    page.wait_for_url("**/c/*/")  # the server keeps the question: its conversation exists
    page.wait_for_selector(".pending .thinking")
    page.click("button[data-stop]")
    page.wait_for_selector("button[data-send]:not([disabled])")
    assert page.input_value("textarea[name=question]") == VACATION
    assert page.locator(".msg-user").all_inner_texts() == [VACATION]
    assert page.locator(".msg-assistant").count() == 0
    assert page.locator(".ask-error").is_hidden()
    assert page.evaluate("document.activeElement.name") == "question"
    assert overflow(page) == []
    screenshot(page, f"chat-stopped-before-words{suffix}.png")
    page.close()


def test_stop_after_the_first_words_keeps_them_and_leaves_the_box_empty(browser, live_server, member, assistant, flaky):
    flaky.chunk_delay = 0.05
    page = open_chat(browser, live_server, member, assistant)
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    page.wait_for_function("() => document.querySelector('.pending .answer').innerText.startsWith('Echo:')")
    page.click("button[data-stop]")
    page.wait_for_selector(".msg-assistant .badge-warn:text('interrupted')")
    assert page.locator(".msg-assistant .answer").inner_text().startswith("Echo:")
    assert page.input_value("textarea[name=question]") == ""
    page.close()


def test_a_question_sent_while_the_database_does_not_answer_says_so_and_stays_in_the_box(
    browser, live_server, member, assistant
):
    """The 503 page the site answers while the database is down is no JSON: the page says what it means."""
    from django.test import RequestFactory

    from corporate.views import database_unavailable

    outage = database_unavailable(RequestFactory().post("/assistants/"))
    page = open_chat(browser, live_server, member, assistant, viewport=PHONE)
    page.route(
        "**/ask/",
        lambda route: route.fulfill(
            status=outage.status_code,
            headers={"Content-Type": outage["Content-Type"], "Retry-After": outage["Retry-After"]},
            body=outage.content,
        ),
    )
    page.fill("textarea[name=question]", VACATION)
    page.click("button[data-send]")
    error = page.wait_for_selector(".ask-error:not([hidden])")
    message = error.inner_text()
    assert "briefly unavailable" in message and f"Try again in {outage['Retry-After']} s" in message, message
    assert page.input_value("textarea[name=question]") == VACATION
    assert overflow(page) == []
    page.close()
