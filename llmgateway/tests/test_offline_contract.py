"""The built-in offline model keeps the parts of OpenAI's contract it can, and refuses, naming the field, the rest."""

import json

import pytest

PASSAGE = (
    "[1] Handbook — Leave\n"
    "Every employee gets 25 days of paid leave a year. Unused days carry over until the end of March. "
    "Leave is booked in the HR portal at least two weeks ahead, and a manager approves it within three days."
)
QUESTION = [{"role": "system", "content": PASSAGE}, {"role": "user", "content": "How many days of paid leave?"}]


def ask(v1, **fields):
    return v1({"model": "offline", "messages": QUESTION, **fields})


def test_max_tokens_cuts_the_answer_with_finish_reason_length(v1):
    whole = ask(v1).json()
    assert whole["choices"][0]["finish_reason"] == "stop"
    for name in ("max_tokens", "max_completion_tokens"):
        cut = ask(v1, **{name: 3}).json()
        assert cut["choices"][0]["finish_reason"] == "length"
        text = cut["choices"][0]["message"]["content"]
        assert text and whole["choices"][0]["message"]["content"].startswith(text)
        assert cut["usage"]["completion_tokens"] <= 3


def test_a_streamed_answer_is_cut_too(v1):
    events = [
        json.loads(line[6:])
        for line in ask(v1, max_tokens=3, stream=True).getvalue().decode().splitlines()
        if line.startswith("data: {")
    ]
    assert [c["choices"][0]["finish_reason"] for c in events if c["choices"] and c["choices"][0]["finish_reason"]] == [
        "length"
    ]


def test_json_object_is_valid_json(v1):
    content = ask(v1, response_format={"type": "json_object"}).json()["choices"][0]["message"]["content"]
    assert "25" in json.loads(content)["answer"]


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"tools": [{"type": "function", "function": {"name": "lookup"}}], "tool_choice": "required"}, "tool_choice"),
        (
            {
                "tools": [{"type": "function", "function": {"name": "lookup"}}],
                "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            },
            "tool_choice",
        ),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}}}}, "response_format"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_what_it_cannot_do_is_a_400_naming_the_field(v1, fields, param):
    response = ask(v1, **fields)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["param"] == param
