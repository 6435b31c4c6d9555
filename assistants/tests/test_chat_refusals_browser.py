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
