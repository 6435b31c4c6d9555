"""The offline answerer on documents as they come: plain text with markup, headings, questions it cannot answer."""

import re

from llmgateway.providers import offline

RST = """Reporting security issues
=========================

Please report security issues by emailing ``security@djangoproject.com``. Mail
sent to that address reaches the `security team <https://example.org/teams/>`_.

Once you've submitted an issue via email, you should receive an acknowledgment
from a member of the :ref:`security team <security-team>` within 3 working days.

.. _security-team: https://example.org/teams/

``django-announce``
===================

A (very) low-traffic list for announcing upcoming security releases, new
releases of Django, and security advisories.
"""


def ask(question, *passages):
    blocks = "\n".join(
        f'<passage id="{n}" source="{source}">\n{text}\n</passage>' for n, (source, text) in enumerate(passages, 1)
    )
    content = f"Searched: the Helpdesk’s documents\nPassages:\n{blocks}\n\nQuestion: {question}"
    return offline.answer([{"role": "user", "content": content}])


def test_plain_text_is_read_without_its_markup_and_line_wraps():
    text = ask("When will I get an acknowledgment of my report?", ("Security policies", RST))
    # One sentence across the wrapped lines, the role and its target gone, the heading underline not quoted.
    assert text == (
        "Once you've submitted an issue via email, you should receive an acknowledgment from a member of the "
        "security team within 3 working days [1]."
    )


def test_a_sentence_that_does_not_name_its_subject_gets_its_heading():
    text = ask("Which mailing list announces new releases?", ("Mailing lists", RST))
    assert text.startswith("django-announce: A (very) low-traffic list for announcing")
    assert "=" not in text and "``" not in text


def test_asked_for_a_phone_number_a_sentence_without_one_is_no_answer():
    passages = ("Security policies", RST), ("Organization", "The security team reads every report it receives.")
    text = ask("What is the phone number of the security team?", *passages)
    assert text.startswith("I couldn't find this in the Helpdesk’s documents.")
    # The refusal says where the closest passages were, so the person knows what was searched.
    assert "“Security policies”" in text or "“Organization”" in text
    assert "[" not in text


def test_a_refusal_names_the_closest_documents():
    passages = (
        ("Benefits, Paid time off", "Everyone gets 20 days of vacation a year."),
        ("Our rituals, Meet-ups", "The entire company gathers in person twice a year."),
    )
    text = ask("What brand of coffee machine is in the kitchen?", *passages)
    assert text.startswith("I couldn't find this in the Helpdesk’s documents. The closest passages, in “")
    assert text.endswith("don’t answer it.")


def test_a_label_in_a_list_answers_with_its_sub_items():
    levels = (
        "Severity levels are:\n\n* **High**\n\n  * Remote code execution\n  * SQL injection\n\n"
        "* **Moderate**\n\n  * Cross site scripting (XSS)\n  * Cross site request forgery (CSRF)\n"
    )
    text = ask("Which severity level is SQL injection?", ("Security policies, Severity levels", levels))
    assert text == "High: Remote code execution; SQL injection [1]."


def test_how_often_is_answered_by_a_frequency_not_any_number(monkeypatch):
    council = (
        "The five candidates with the highest vote totals become the new steering council. "
        "A new council is elected after each release cycle of Django."
    )
    text = ask("How often is a new steering council elected?", ("Organization, Steering council", council))
    assert "A new council is elected after each release cycle of Django [1]." in text
    monkeypatch.setattr(offline, "CONTEXTUAL", False)  # the static judge alone quotes only the frequency
    text = ask("How often is a new steering council elected?", ("Organization, Steering council", council))
    assert text.startswith("A new council is elected after each release cycle of Django")


def test_the_questions_words_side_by_side_count_for_more(monkeypatch):
    passages = [
        ("1", "A side business that is different from your day job is fine for a few hours a week.", "Moonlighting"),
        ("2", "On a business trip, keep receipts on the side of your bag for your job's expense report.", "Travel"),
    ]
    question = "Can I run a side business next to my job?"  # pairs: run side, side business, business next, next job

    def scores():
        return {c.passage: c.score for c in offline.rank(question, passages)[0]}

    monkeypatch.setattr(offline, "W_PHRASE", 0.0)
    without = scores()
    monkeypatch.setattr(offline, "W_PHRASE", 0.1)
    with_pairs = scores()
    assert abs(with_pairs[0] - without[0] - 0.1 / 4) < 1e-6  # "side business" side by side: one pair of four
    assert with_pairs[1] == without[1]  # the same words, apart: no bonus


def test_how_long_is_no_answer_without_an_amount():
    sessions = (
        "The admin keeps you signed in while you work in it. "
        "Sign out of the admin on a shared computer. "
        "Staff accounts need a strong password."
    )
    text = ask("How long does the admin keep me signed in?", ("Admin guide, Sessions", sessions))
    assert text.startswith("I couldn't find this in the Helpdesk’s documents.")
    assert "[" not in text
    # The same passage with the amount answers; so does one that says there is no limit.
    stated = sessions.replace("while you work in it", "for two weeks")
    assert "for two weeks [1]" in ask("How long does the admin keep me signed in?", ("Admin guide, Sessions", stated))
    unlimited = sessions.replace("while you work in it", "with no limit")
    assert "[1]" in ask("How long does the admin keep me signed in?", ("Admin guide, Sessions", unlimited))


def test_a_fact_stated_in_two_documents_cites_both():
    passages = (
        ("Employee handbook, Expenses", "Daily limits while travelling: meals up to 60 euros a day."),
        ("Travel policy, Meals", "Meals are reimbursed up to 60 euros a day, on receipts."),
        ("Travel policy, Hotels", "Hotels are booked through the travel desk for every trip."),
    )
    text = ask("How much can I spend on meals a day when travelling?", *passages)
    # The best sentence is quoted once, with both documents that state its figure; the hotel passage,
    # which states nothing of it, is not cited.
    assert text.count("60 euros") == 1
    assert "[1][2]" in text or "[2][1]" in text
    assert "[3]" not in text


def test_a_passage_with_the_same_words_but_not_the_fact_is_not_cited():
    passages = (
        ("Employee handbook, Expenses", "Daily limits while travelling: meals up to 60 euros a day."),
        ("Travel policy, Meals", "Meals while travelling are paid with the company card."),
    )
    text = ask("How much can I spend on meals a day when travelling?", *passages)
    assert "[1]" in text and "[2]" not in text


def test_a_second_passage_of_a_document_already_cited_is_not_cited_again():
    passages = [
        ("1", "Meals are reimbursed up to 60 euros a day while travelling.", "Travel policy, Meals"),
        ("2", "While travelling, meals up to 60 euros a day are paid on receipts.", "Travel policy, Allowances"),
        ("3", "Daily limits while travelling: meals up to 60 euros a day.", "Employee handbook, Expenses"),
    ]
    ranked = [offline.Candidate(0.7 - n / 100, n, 0, label, text) for n, (label, text, _) in enumerate(passages)]
    question = "How much can I spend on meals a day when travelling?"
    # The answer quotes passage 1: the other travel policy passage adds nothing, the handbook does.
    assert offline._also_stated(question, ranked[0], ranked, passages, {0}) == ["3"]


def judged_as(monkeypatch, cosines):
    """The contextual model's verdict fixed: each candidate's cosine by the start of its sentence."""

    def scores(question, scored, passages):
        found = [next(c for start, c in cosines.items() if item.text.startswith(start)) for item in scored[:8]]
        return found, found

    monkeypatch.setattr(offline, "contextual_scores", scores)


REPORTING = (
    "Security, Reporting",
    "Once you have submitted an issue by email, you should receive an acknowledgment within three working days. "
    "Reports are read by the security team. Include the version you use. Encrypt sensitive details with our key. "
    "Do not post the issue in public.",
)


def test_a_strong_contextual_verdict_lets_a_paraphrase_with_few_shared_words_through(monkeypatch):
    question = "How soon will someone get back to me about a vulnerability?"
    scored, _ = offline.rank(question, [("1", REPORTING[1], REPORTING[0])])
    assert offline.STRONG_FLOOR <= scored[0].score < offline.ANSWER_THRESHOLD  # few words in common
    others = {"Reports": 0.35, "Include": 0.3, "Encrypt": 0.3, "Do not": 0.35}
    # The contextual model finds the sentence close (0.72) and far nearer than the rest: answered.
    judged_as(monkeypatch, {"Once": 0.72, **others})
    assert "within three working days [1]." in ask(question, REPORTING)
    # Near, but not that near (0.6): the static score's floor applies, and the question is refused.
    judged_as(monkeypatch, {"Once": 0.6, **others})
    assert ask(question, REPORTING).startswith("I couldn't find this in the Helpdesk’s documents.")


def test_a_passage_saying_the_answer_twice_lets_a_paraphrase_through(monkeypatch):
    question = "How soon will someone get back to me about a vulnerability?"
    others = {"Include": 0.3, "Encrypt": 0.3, "Do not": 0.35}
    # Two sentences of the passage about equally near (0.6, 0.59), well ahead of the rest: answered, though
    # neither verdict alone is strong.
    judged_as(monkeypatch, {"Once": 0.6, "Reports": 0.59, **others})
    assert "within three working days [1]." in ask(question, REPORTING)
    # The second one clearly farther (0.5): one near sentence alone, under the static floor: refused.
    judged_as(monkeypatch, {"Once": 0.6, "Reports": 0.5, **others})
    assert ask(question, REPORTING).startswith("I couldn't find this")
    # As near, but in another passage (another document's near-miss): no corroboration, refused.
    elsewhere = ("Security, Advisories", "Reports of fixed issues are published as advisories.")
    judged_as(monkeypatch, {"Once": 0.6, "Reports": 0.59, **others})
    split = ("Security, Reporting", REPORTING[1].replace(" Reports are read by the security team.", ""))
    assert ask(question, split, elsewhere).startswith("I couldn't find this")


LISTS = (
    ("Lists, Announcements", "The announcements list carries security advisories and release notes."),
    ("Lists, Developers", "The developers list discusses how the code changes between releases."),
    ("Lists, Users", "The users list answers questions about using each release."),
    ("Lists, Archive", "Old lists are archived and read only."),
)


def test_half_answers_in_several_passages_need_a_clearer_verdict(monkeypatch):
    question = "Which mailing list carries release news?"
    # Three sentences of three passages score within a tenth of each other, and the closest one stands out
    # from the rest by 0.11 only: no passage answers, several half do. Refused.
    judged_as(monkeypatch, {"The announcements": 0.46, "The users": 0.66, "The developers": 0.64, "Old": 0.54})
    text = ask(question, *LISTS)
    assert text.startswith("I couldn't find this in the Helpdesk’s documents.")
    assert "[" not in text
    # The same three, with the closest standing out by 0.16 (the archive sentence is farther): answered.
    judged_as(monkeypatch, {"The announcements": 0.46, "The users": 0.66, "The developers": 0.64, "Old": 0.4})
    assert "[" in ask(question, *LISTS)


def test_a_quantity_asked_for_by_its_name_needs_a_figure():
    leaving = (
        "Benefits, Leaving",
        "If you resign from 37signals with vacation days left, you are paid for those unused days.",
    )
    text = ask("What is the notice period when I resign?", leaving)
    assert text.startswith("I couldn't find this in the Helpdesk’s documents.")  # "37signals" is no amount
    stated = ("Benefits, Leaving", "If you resign, the notice period is one month.")
    assert "one month [1]" in ask("What is the notice period when I resign?", stated)


def test_who_is_answered_by_a_name_the_question_does_not_already_say():
    social = (
        "Social media accounts, Facebook",
        "No project members have access to the Facebook account. "
        "Day to day management of the Facebook account has been delegated to the Foundation Staff.",
    )
    # "Facebook" is the question's own word, not the name it asks for: the sentence naming who does it comes along.
    text = ask("Who looks after the project's Facebook page?", social)
    assert "delegated to the Foundation Staff [1]." in text


def test_markdown_link_definitions_are_not_sentences():
    body = (
        "If you are not yet a member of the organization, turn on two-factor authentication for your account.\n"
        "\n"
        "[Code of Conduct]: https://github.com/nodejs/admin/blob/HEAD/CODE_OF_CONDUCT.md\n"
        "[Labels]: doc/contributing/collaborator-guide.md#labels\n"
        '  [two-factor authentication]: <https://help.github.com/articles/2fa/> "Two-factor"\n'
    )
    headings, parts = offline.passage_parts(body, "Onboarding")
    assert parts == [
        "If you are not yet a member of the organization, turn on two-factor authentication for your account."
    ]
    # A label with a colon and words after it is a sentence, not a link's target.
    assert offline.passage_parts("[Note]: this is important.", "Onboarding")[1] == ["[Note]: this is important."]


NOMINATIONS = (
    ("Governance, Reviewing a nomination", "A nomination can be reviewed in the same way one would review a change."),
    ("Governance, Nominating", "The nomination passes if no collaborators oppose it after one week."),
    ("Governance, Opposing", "People can object in the private discussion."),
    ("Governance, Onboarding", "New collaborators are onboarded after their nomination."),
)


def test_among_tied_half_answers_the_one_holding_the_amount_asked_for_answers(monkeypatch):
    question = "How long do people have to object to a nomination?"
    # Three sentences of three passages tie, and the closest stands out by 0.10 only; but "how long" asks
    # for an amount, and one of them alone states one ("one would review" is no amount): answered.
    cosines = {"A nomination": 0.6, "The nomination": 0.62, "People": 0.66, "New": 0.45}
    judged_as(monkeypatch, cosines)
    assert "after one week [2]" in ask(question, *NOMINATIONS)
    # Where none of them states one, the same tie is several half-answers: refused.
    vague = ("Governance, Nominating", "The nomination passes if no collaborators oppose it after a while.")
    judged_as(monkeypatch, {**cosines, "The nomination": 0.72, "New": 0.5})
    text = ask(question, NOMINATIONS[0], vague, *NOMINATIONS[2:])
    assert text.startswith("I couldn't find this in the Helpdesk’s documents.")


SETTINGS = (
    ("Config, Custom keys", "Settings for other tools should not be placed in your config file."),
    ("Config, Files", "Settings for other tools are read from your config file by those tools."),
    ("Config, Tools", "Settings for other tools also live in environment variables beside your config file."),
    ("Config, Builtin", "The builtin config file is kept across updates."),
)


def test_among_tied_half_answers_the_one_saying_what_is_allowed_answers(monkeypatch):
    question = "Can I keep settings for other tools in my config file?"
    # Three sentences of three passages tie, the closest standing out by 0.10 only; "Can I" asks what is
    # allowed, and one of them alone says it ("should not be placed"): answered.
    cosines = {
        "Settings for other tools should": 0.6,
        "Settings for other tools are": 0.62,
        "Settings for other tools also": 0.66,
        "The builtin": 0.45,
    }
    judged_as(monkeypatch, cosines)
    assert "should not be placed in your config file [1]" in ask(question, *SETTINGS)
    # Where none of them says it, the same tie is several half-answers: refused.
    vague = ("Config, Custom keys", "Settings for other tools are placed in your config file.")
    judged_as(monkeypatch, {**cosines, "Settings for other tools are placed": 0.6})
    assert ask(question, vague, *SETTINGS[1:]).startswith("I couldn't find this")


ACME = (
    ("Acme, Releases", "Acme publishes a new release every three months. Each Acme release is announced on the list."),
    ("Acme, Support", "Acme supports only the latest release. Bugs in older Acme releases are closed."),
    ("Acme, Installing", "Acme installs with one command on Linux and macOS. Acme needs Python 3.9 or newer."),
    ("Acme, Security", "Report Acme security issues by email to the maintainers. Acme fixes them in the next release."),
)


def test_an_answer_sharing_only_words_every_passage_holds_needs_stronger_evidence(monkeypatch):
    # Every passage names Acme; the closest sentence shares nothing else with the question. The
    # contextual model is made to find it standing out, so only the common-words rule refuses it.
    question = "Who designed the Acme logo?"
    scored, _ = offline.rank(question, [(str(n), text, source) for n, (source, text) in enumerate(ACME, 1)])
    assert offline.ANSWER_THRESHOLD <= scored[0].score < offline.COMMON_WORDS_FLOOR
    judged_as(monkeypatch, {"Acme installs": 0.7, "Acme": 0.3, "Each": 0.3, "Bugs": 0.3, "Report": 0.3})
    assert ask(question, *ACME).startswith("I couldn't find this in the Helpdesk’s documents.")
    monkeypatch.setattr(offline, "COMMON_WORDS_FLOOR", offline.ANSWER_THRESHOLD)
    assert ask(question, *ACME).startswith("Acme installs with one command")
    # A word that only some passages hold ("install") is evidence: answered at the same static score.
    monkeypatch.undo()
    judged_as(monkeypatch, {"Acme installs": 0.7, "Acme": 0.3, "Each": 0.3, "Bugs": 0.3, "Report": 0.3})
    question = "Which operating systems can Acme be installed on?"
    scored, _ = offline.rank(question, [(str(n), text, source) for n, (source, text) in enumerate(ACME, 1)])
    assert scored[0].score < offline.COMMON_WORDS_FLOOR
    text = ask(question, *ACME)
    assert text.startswith("Acme installs with one command on Linux and macOS") and text.endswith("[3]."), text
    # With fewer passages than COMMON_MIN_PASSAGES, no word counts as common.
    assert not offline._only_common_words(
        "Who designed the Acme logo?", [("1", ACME[2][1], ""), ("2", ACME[0][1], "")], ACME[2][1]
    )


HOOKS = """Life cycle scripts

Scripts run at these points of a package's life.

prepare
* Runs before the package is packed and on a local install.

prepublishOnly
* Runs before the package is prepared and packed, only on publish.

prepack
* Runs before a tarball is packed, on pack and on publish.
"""


def test_a_label_over_a_list_names_the_items_it_heads():
    sections = []
    _, parts = offline.passage_parts(HOOKS, "Scripts", sections)
    # The short lines above the lists head their items; they are no candidate answers.
    assert "prepublishOnly" not in parts
    assert sections[parts.index("Runs before the package is prepared and packed, only on publish.")] == "prepublishOnly"
    # An item that opens with its verb is quoted with its label, the subject it lacks.
    text = ask("Which script runs only when I publish?", ("Scripts", HOOKS))
    assert "prepublishOnly: Runs before the package is prepared and packed, only on publish" in text


def test_a_short_line_that_is_a_sentence_or_has_no_list_below_is_no_label():
    body = "Notes\n\nAll done.\n* Runs nightly.\n\nprepack\nRuns before a tarball is packed."
    sections = []
    _, parts = offline.passage_parts(body, "Scripts", sections)
    assert "All done." in parts  # a sentence, though short and over a list
    assert sections[parts.index("Runs before a tarball is packed.")] == ""  # no list item below "prepack"


def test_a_sentence_opening_with_its_verb_is_told_from_one_with_a_plural_subject():
    assert offline._OPENS_WITH_VERB.search("Runs before a tarball is packed.")
    assert offline._OPENS_WITH_VERB.search("Does not run during publish.")
    assert not offline._OPENS_WITH_VERB.search("Scopes have a many-to-one relationship with registries.")
    assert not offline._OPENS_WITH_VERB.search("Packages can be published under a scope.")


def test_n_choices_whole_and_streamed():
    """An OpenAI client asking for n answers gets n choices, each with its index, whole or streamed."""
    from llmgateway.providers.offline import OfflineProvider
    from llmgateway.registry import ModelSpec

    provider = OfflineProvider(ModelSpec(name="offline", provider="offline"))
    request = {"messages": [{"role": "user", "content": "hello"}], "n": 3}
    one = provider.complete({"messages": request["messages"]})
    three = provider.complete(request)
    assert [c["index"] for c in three["choices"]] == [0, 1, 2]
    assert {c["message"]["content"] for c in three["choices"]} == {one["choices"][0]["message"]["content"]}
    assert three["usage"]["completion_tokens"] == 3 * one["usage"]["completion_tokens"]
    texts = {}
    for chunk in provider.stream({**request, "n": 2}):
        for choice in chunk["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + (choice["delta"].get("content") or "")
    assert texts == {0: one["choices"][0]["message"]["content"], 1: one["choices"][0]["message"]["content"]}


FAQ = """Questions and answers

1. Background

1.1.

How do you pronounce "Quillet"?

The "Quill" as in a feather pen. The "et" is said with a short "e" -- ie. "Quill-et" (as in "bet")
rather than "Quill-ay" (as in "day").

1.2.

Where does the name "Quillet" come from?

From the old tales of the north. Before its first release the project was called Ravenhall, after the
keeper of the tales, who could hear the grass grow and see a ship at sea from a day away. That would have
been a fine name, but another tool had it already. Quillet is the gate of the hall in the same tales:
only those found worthy may pass it. It is not short for "quality linter", though that is a fair guess.

2.

Can Quillet check a file while my editor is still writing it?

No. It reads each file once, from start to end, and a file that changes meanwhile is read again on the next run.
"""


QUILLET_GUIDE = (
    "Quillet runs on Linux, macOS and Windows and needs Python 3.10 or newer. Install it with pip into the "
    "environment of the project it checks. Its settings live in the project's pyproject.toml, under a table "
    "of its own. Every rule can be switched off for one line with a comment that names the rule."
)


def test_an_faq_question_heads_its_answer_and_a_short_answer_goes_on_to_its_next_sentence(monkeypatch):
    monkeypatch.setattr(offline, "SECOND_SENTENCE", 1.0)  # no other sentence joins the best one for its score
    text = ask("How do you actually say the word Quillet?", ("Quillet FAQ", FAQ), ("Quillet guide", QUILLET_GUIDE))
    # The answer's first sentence alone says half of it; the next sentence of the same answer says the rest,
    # and "ie." inside it does not end the sentence.
    assert text.startswith('The "Quill" as in a feather pen. The "et" is said with a short "e" -- ie. "Quill-et"'), text
    assert text.endswith("[1].")
    assert "tales" not in text  # the next question's answer is not part of this one


def test_an_faq_question_is_the_heading_of_the_sentences_that_answer_it():
    under = []
    parts = offline.passage_parts(FAQ, "Quillet FAQ", under)[1]
    assert under[parts.index("No.")] == "Can Quillet check a file while my editor is still writing it?"
    assert under[parts.index('The "Quill" as in a feather pen.')] == 'How do you pronounce "Quillet"?'


def test_a_bare_section_number_is_not_a_sentence():
    assert offline.sentences("Can Quillet check a file while it changes? 2.1.\n\nNo.") == [
        "Can Quillet check a file while it changes?",
        "No.",
    ]
    parts = offline.passage_parts(FAQ)[1]
    assert not any(part.rstrip(".").replace(".", "").isdigit() for part in parts), parts
    assert not any(part.endswith(("? 1.2.", "? 2.")) for part in parts), parts


MEETUPS = (
    (
        "Handbook, Our Rituals › Meet-ups",
        "Meet-ups\n\nTwice a year the whole company meets in a different city for a week. Most of the planning of a "
        "meet-up is taken care of for you; you just need to book your flights. Lodging, meeting space and the agenda are "
        "planned and shared well in advance.",
    ),
    (
        "Handbook, Travel › Booking travel",
        "Booking travel\n\nBook flights and trains yourself and expense them afterwards. Choose economy class for "
        "trips under six hours. Keep the receipts of every booking you make for a trip.",
    ),
    (
        "Handbook, Our Internal Systems › Queenbee",
        "Queenbee\n\nQueenbee is our invoice, accounting and identity system. Here you can look up any customer "
        "account, refund an invoice, or sign in as a customer.",
    ),
)


def test_a_which_question_needs_a_name_term_or_version_the_question_does_not_hold(monkeypatch):
    # The meet-up sentence is about booking flights, but it names no airline: "which airline" is not answered.
    others = {"Twice": 0.3, "Lodging": 0.3, "Book flights": 0.3, "Choose": 0.3, "Keep": 0.3, "Queenbee": 0.3}
    judged_as(monkeypatch, {**others, "Most of the planning": 0.75, "Here you can": 0.3})
    refused = ask("Which airline do we fly to meet-ups?", *MEETUPS)
    assert refused.startswith("I couldn't find this in the Helpdesk’s documents."), refused
    monkeypatch.setattr(offline, "_ASKS_WHICH", re.compile("(?!)"))
    assert ask("Which airline do we fly to meet-ups?", *MEETUPS).startswith("Most of the planning")
    monkeypatch.undo()
    # A sentence that does not name its subject ("Here you can …") is named by its heading.
    judged_as(monkeypatch, {**others, "Most of the planning": 0.3, "Here you can": 0.75})
    assert "refund an invoice" in ask("Which system do I use to refund a customer's invoice?", *MEETUPS)


def test_a_which_version_question_needs_a_figure():
    assert offline._specific("Use pip 20.3 or later.", "Which pip release supports it?")
    assert offline._specific("Pass the --prefix option.", "Which option do I pass?")
    assert offline._specific("Put a sha256 hash next to each package.", "Which hash do I use?")
    assert not offline._specific("You just need to book your flights [1].", "Which airline do we fly?")
    assert not offline._specific("Managers meet 1:1s with employees.", "Which airline do we fly?")
    assert offline._specific("High: Remote code execution; SQL injection", "Which severity level is SQL injection?")
    assert offline._ASKS_VERSION.search("Which Python version does the script need?")
    assert offline._ASKS_VERSION.search("Which release first added it?")


TOOLS = (
    (
        "Valgrind manual, The tools › Massif",
        "Massif\n\nMassif is a heap profiler. It helps you make your programs use less memory. It measures how "
        "much heap memory your program uses, including the space the allocator wastes.",
    ),
    (
        "Valgrind manual, The tools › Cachegrind",
        "Cachegrind\n\nCachegrind is a cache and branch-prediction profiler. It helps you make your programs run "
        "faster. Use it with the cg_annotate script to read its output.",
    ),
    (
        "Valgrind manual, The tools › Helgrind",
        "Helgrind\n\nHelgrind is a thread error detector. It finds data races in programs that use POSIX threads. "
        "Lock order problems are reported too.",
    ),
)


def test_a_sentence_that_refers_back_brings_the_one_it_refers_to(monkeypatch):
    cosines = {"Massif is": 0.5, "It helps you make your programs use": 0.8, "It measures": 0.45}
    others = {"Cachegrind": 0.3, "It helps you make your programs run": 0.35, "Use": 0.2, "Helgrind": 0.2}
    judged_as(monkeypatch, {**cosines, **others, "It finds": 0.2, "Lock": 0.2})
    text = ask("Which tool helps me make my program use less memory?", *TOOLS)
    # "It" is Massif: the sentence before says so.
    assert text.startswith("Massif is a heap profiler. It helps you make your programs use less memory"), text
