"""The chat with the keyboard alone, and streamed answers for screen readers."""

import pytest

from assistants.tests.test_chat_browser import VACATION, open_chat
from corporate.tests.accessibility import axe_violations, describe
from corporate.tests.browser import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The focused element shows it: a solid ring of at least 2px (form fields: Pico's border and shadow),
# and the browser counts it as keyboard focus.
FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const ring = style.outlineStyle === 'solid' && parseFloat(style.outlineWidth) >= 2
    && style.outlineColor !== 'rgba(0, 0, 0, 0)';
  const field = el.matches('input, select, textarea') && style.boxShadow !== 'none';
  return el.matches(':focus-visible') && (ring || field);
}"""


FOCUSED = "(s) => Boolean(document.activeElement && document.activeElement.matches(s))"


def focused(page, selector):
    return page.evaluate(FOCUSED, selector)


def focus_moves_to(page, selector):
    """The focus lands on `selector` (moved by the page's script as the swapped content arrives)."""
    page.wait_for_function(FOCUSED, arg=selector, timeout=30_000)  # a busy host may take seconds to swap it


def press_until(page, selector, key="Tab", limit=60):
    """Press `key` until the focus is on `selector`; the focus shows on the way's end."""
    for _ in range(limit):
        page.keyboard.press(key)
        if focused(page, selector):
            assert page.evaluate(FOCUS_SHOWN), f"no visible focus on {selector}"
            return
    where = page.evaluate("document.activeElement.outerHTML.slice(0, 200)")
    raise AssertionError(f"{key} did not reach {selector} in {limit} presses; the focus is on {where}")


def test_chat_with_the_keyboard_alone(browser, live_server, member, assistant):
    page = open_chat(browser, live_server, member, assistant)
    page.evaluate("document.activeElement.blur()")

    # The first Tab shows "Skip to content"; Enter skips the site's navigation.
    press_until(page, ".skip-link", limit=1)
    assert page.locator(".skip-link").is_visible()
    screenshot(page, "chat-keyboard-skip-link.png")
    page.keyboard.press("Enter")
    assert focused(page, "main")

    # Into the question box, ask, and the focus stays in the box.
    press_until(page, "textarea[name=question]", limit=15)
    page.keyboard.type(VACATION)
    page.keyboard.press("Enter")
    page.locator(".msg-assistant:not(.pending)").first.wait_for()
    page.wait_for_selector("button[data-send]:not([disabled])")
    assert "27 vacation days" in page.locator(".msg-assistant .answer").inner_text()
    assert focused(page, "textarea[name=question]")

    # Back to the answer's [1] marker: Enter opens the passage beside the chat, Escape closes it.
    press_until(page, "#messages .answer a.cite", key="Shift+Tab")
    screenshot(page, "chat-keyboard-citation-focus.png")
    page.keyboard.press("Enter")
    page.wait_for_selector("#citation-panel:not([hidden]) .passage-text mark")
    assert focused(page, "#citation-panel")
    # The page as the script left it (a streamed answer, the conversation added to the list, the panel open).
    violations = axe_violations(page)
    assert not violations, describe(violations)
    press_until(page, "#citation-panel [data-close-citation]")
    page.keyboard.press("Escape")
    page.wait_for_selector("#citation-panel", state="hidden")
    assert focused(page, "#messages .answer a.cite"), "the focus goes back to the marker"

    # On to Regenerate: Space redoes the answer, and the focus comes back to the new one's button.
    press_until(page, "#messages [data-regenerate]")
    page.keyboard.press(" ")
    page.wait_for_selector(".msg-assistant .version-label:text('2/2')")
    page.wait_for_selector("button[data-send]:not([disabled])")
    assert focused(page, "#messages [data-regenerate]")

    # The version switcher: ‹ shows version 1, › version 2, the focus staying on the switcher.
    press_until(page, "[data-version=prev]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg-assistant .version-label:text('1/2')")
    focus_moves_to(page, "[data-version=next]")
    assert page.get_by_role("group", name="Version 1 of 2").is_visible()
    violations = axe_violations(page)
    assert not violations, describe(violations)
    screenshot(page, "chat-keyboard-versions.png")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg-assistant .version-label:text('2/2')")
    focus_moves_to(page, "[data-version=prev]")
    press_until(page, "#messages [data-regenerate]", key="Shift+Tab", limit=1)

    # "Helpful" is swapped for its pressed state; the focus stays on it (once htmx has wired the new version).
    page.wait_for_selector("#messages .htmx-added, #messages .htmx-settling", state="detached")
    press_until(page, "#messages .feedback button[title=Helpful]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#messages .feedback button[title=Helpful][aria-pressed=true]")
    focus_moves_to(page, "#messages .feedback button[title=Helpful]")
    page.close()


def test_streamed_answer_is_announced_once_finished(browser, live_server, member, assistant):
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    upstream = FakeOpenAI(chunk_delay=0.05).start()
    try:
        ModelConfig.objects.create(
            name="slow", provider="openai-compatible", base_url=upstream.base_url, upstream_model="s", max_retries=0
        )
        assistant.model_name = "slow"
        assistant.save()
        page = open_chat(browser, live_server, member, assistant)
        live = page.locator("#messages")
        assert live.get_attribute("aria-live") == "polite"
        assert live.get_attribute("aria-busy") == "false"

        page.fill("textarea[name=question]", "Tell me everything about vacation days. " * 4)
        page.keyboard.press("Enter")
        # Part of the answer is in the live region, which says it is still busy.
        page.wait_for_function(
            """() => {
              const answer = document.querySelector('#messages .pending .answer');
              return answer && answer.innerText.length > 40
                && document.getElementById('messages').getAttribute('aria-busy') === 'true';
            }"""
        )
        # The busy region keeps its layout: no spinner of its own, lines still wrap.
        style = page.evaluate(
            """() => {
              const list = document.getElementById('messages');
              return {before: getComputedStyle(list, '::before').content, space: getComputedStyle(list).whiteSpace};
            }"""
        )
        assert style == {"before": "none", "space": "normal"}
        page.wait_for_selector("button[data-send]:not([disabled])", timeout=30000)
        assert live.get_attribute("aria-busy") == "false"
        assert "Echo:" in live.locator(".msg-assistant .answer").last.inner_text()
        page.close()
    finally:
        upstream.stop()


@pytest.mark.parametrize(
    "viewport, suffix", [({"width": 1280, "height": 800}, ""), ({"width": 390, "height": 844}, "-phone")]
)
def test_enter_while_an_answer_streams_keeps_the_next_question_in_the_box(
    browser, live_server, member, assistant, viewport, suffix
):
    from llmgateway.models import ModelConfig
    from llmgateway.tests.fake_openai import FakeOpenAI

    upstream = FakeOpenAI(chunk_delay=0.05).start()
    try:
        ModelConfig.objects.create(
            name="slow", provider="openai-compatible", base_url=upstream.base_url, upstream_model="s", max_retries=0
        )
        assistant.model_name = "slow"
        assistant.save()
        page = open_chat(browser, live_server, member, assistant, viewport=viewport)
        page.fill("textarea[name=question]", "Tell me everything about vacation days. " * 4)
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('.pending .answer').innerText.length > 20")
        # The next question, typed while the answer streams: Enter does not send it, and it stays in the box.
        page.keyboard.type(VACATION)
        page.keyboard.press("Enter")
        assert page.locator(".pending").count() == 1
        assert page.input_value("textarea[name=question]") == VACATION
        assert page.locator(".msg-user").count() == 1
        screenshot(page, f"chat-enter-while-streaming{suffix}.png")
        page.wait_for_selector("button[data-send]:not([disabled])", timeout=30000)
        assert upstream.calls == 1
        assert page.locator(".msg-user").count() == 1
        assert page.input_value("textarea[name=question]") == VACATION
        # Once the answer is complete, Enter sends it.
        page.keyboard.press("Enter")
        page.locator(".msg-assistant:not(.pending)").nth(1).wait_for(timeout=30000)
        assert page.locator(".msg-user").all_inner_texts()[-1] == VACATION
        page.close()
    finally:
        upstream.stop()
