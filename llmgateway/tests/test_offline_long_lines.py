"""Lines of any length are answered from in time linear in their length: no markup pattern backtracks.

Each case runs in a forked child given a generous minute; before the patterns were made linear,
one 200,000-character line took hours (the heading pattern's work grew with the cube of its length).
"""

import json
import multiprocessing
import os
import queue

import pytest

from documents.parsers import markdown
from llmgateway.providers import offline

LONG = 200_000
LINES = {
    "heading": "# a" + " " * LONG + "x",
    "role": ":a:`" + " " * LONG + "x",
    "link": "`a" + " " * LONG + "x",
    "table rule": "--" + " " * LONG + "x",
    "blank list lines": " \n" * LONG + "#",
    "url": "**a" + "://" * LONG,
    "full stops": "[" + "." * LONG + "`",
    "question": "\n" * LONG + "x",
}


def _in_child(function, *args, seconds=60):
    """function(*args) in a forked process; its result, or a failure when it is still running after `seconds`."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()

    def run():
        try:
            out.put(function(*args))
            out.close()
            out.join_thread()
        finally:
            os._exit(0)  # the parent's connections stay the parent's

    child = context.Process(target=run)
    child.start()
    try:
        return out.get(timeout=seconds)  # read before joining: a big result waits in the pipe for its reader
    except queue.Empty:
        pytest.fail(f"still running after {seconds} s")
    finally:
        child.kill()
        child.join()


def _answer_all():
    answers = {}
    for name, line in LINES.items():
        tool = [{"role": "tool", "tool_call_id": "1", "content": line}, {"role": "user", "content": "what is x?"}]
        passage = f'Searched: {line}\n<passage id="1" source="Notes">\n{line}\nThe fee is 20 euros.\n</passage>\n'
        answers[name] = (
            offline.answer(tool),
            offline.answer([{"role": "user", "content": passage + "Question: What is the fee?"}]),
        )
    return answers


def _parse_markdown(path):
    return [getattr(unit, "text", unit) for unit in markdown.parse(path, None, None, lambda *a: None)]


def test_a_pathological_line_is_answered_from_promptly():
    answers = _in_child(_answer_all)
    assert set(answers) == set(LINES)
    for _, from_passage in answers.values():
        assert "20 euros [1]" in from_passage


def test_markup_is_still_read_on_ordinary_lines():
    parts = offline.passage_parts("## Travel ##\nSee :ref:`the policy  <x>` and `our page <https://e.org>`_.\n")
    assert parts[0] == ["Travel"]
    assert parts[1] == ["See the policy and our page."]
    assert markdown.closed_heading("Title ##  ") == "Title" and markdown.closed_heading("#") == "#"


def test_a_long_line_keeps_its_text_as_it_is():
    line = "See :ref:`the policy` " + "word " * 400
    assert offline._unwrap([line]) == [(line, False)]


def test_a_markdown_file_with_a_pathological_line_is_parsed_promptly(tmp_path, monkeypatch):
    monkeypatch.setattr(markdown, "read_text", lambda path, limits, budget: path.read_text())
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\n" + "# a" + "\t" * LONG + "x\n" + "**a " * LONG + "\n\n**bold** text\n")
    units = _in_child(_parse_markdown, path)
    assert any("bold text" in str(unit) for unit in units)


def test_a_v1_request_with_a_pathological_tool_message_does_not_stall(v1):
    body = {
        "model": "offline",
        "messages": [
            # 20,000 characters: a request body well within the limits; hours of backtracking before.
            {"role": "tool", "tool_call_id": "1", "content": "# a" + " " * 20_000 + "x\n:a:`" + " " * 20_000 + "x"},
            {"role": "user", "content": "what is x?"},
        ],
    }

    def post():
        response = v1(body)
        return response.status_code, response.content

    status, content = _in_child(post)
    assert status == 200
    assert json.loads(content)["choices"][0]["message"]["content"]
