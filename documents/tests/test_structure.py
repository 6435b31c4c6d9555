"""Structure kept through chunking: tables whole or split by rows under their header, PDF outlines as sections."""

import io

import pytest

from documents.chunking import chunk_units
from documents.parsers.base import ParseError, Unit
from documents.tests.conftest import pdf_bytes

pytestmark = pytest.mark.django_db

ROWS = 60


def _markdown_table(rows=ROWS):
    lines = ["| City | Hotel limit |", "| --- | --- |"]
    lines += [f"| City {i} | {100 + i} euros |" for i in range(rows)]
    return "\n".join(lines)


def test_a_table_that_fits_stays_whole_in_a_passage_of_its_own():
    text = "Hotels are booked by the travel desk. " * 3 + "\n\n" + _markdown_table(5) + "\n\nAsk the desk."
    pieces = chunk_units([Unit(text, section="Hotels")], size=1200, overlap=200)
    tables = [p for p in pieces if "| City 0 |" in p.text]
    assert len(tables) == 1
    assert tables[0].text == _markdown_table(5)
    assert all("| City" not in p.text for p in pieces if p is not tables[0])


def test_a_long_table_is_split_between_rows_with_its_header_repeated():
    text = "Limits.\n\n" + _markdown_table()
    pieces = [p for p in chunk_units([Unit(text, section="Hotels")], size=400, overlap=100) if "| City" in p.text]
    assert len(pieces) > 3
    for piece in pieces:
        lines = piece.text.splitlines()
        assert lines[:2] == ["| City | Hotel limit |", "| --- | --- |"]
        assert all(line.startswith("| City ") and line.endswith(" euros |") for line in lines[2:])  # whole rows
        assert len(piece.text) <= 400
    rows = [line for piece in pieces for line in piece.text.splitlines()[2:]]
    assert rows == [f"| City {i} | {100 + i} euros |" for i in range(ROWS)]  # each row once, in order
    # Offsets span each part's own rows.
    assert all(a.end <= b.start for a, b in zip(pieces, pieces[1:], strict=False))


def test_prose_with_pipes_is_not_a_table():
    text = "Use the a | b syntax once. " * 80
    pieces = chunk_units([Unit(text, section="")], size=400, overlap=100)
    assert len(pieces) > 3 and all(len(p.text) <= 400 for p in pieces)


def test_a_table_with_a_long_header_gives_its_column_names_once(ingest):
    columns = 3000
    header = "| " + " | ".join(f"col{i}" for i in range(columns)) + " |\n"
    rows = "".join(f"| r{i} | x |\n" for i in range(columns))
    document = ingest("widetable.md", f"# Wide table\n\n{header}{rows}".encode())
    assert document.status == "ready", document.failure_reason
    texts = list(document.chunks.order_by("position").values_list("text", flat=True))
    assert sum(len(text) for text in texts) < 2 * document.char_count
    assert sum(text.count("col2999") for text in texts) == 1  # the header once
    found = [line for text in texts for line in text.splitlines() if line.startswith("| r")]
    assert found == [f"| r{i} | x |" for i in range(columns)]  # each row once, in order


def test_passages_never_hold_many_times_the_text():
    # An overlap almost as long as the passages would repeat each short sentence dozens of times.
    text = "Go now. " * 500
    with pytest.raises(ParseError, match="more than 3 times its length"):
        chunk_units([Unit(text)], size=200, overlap=190)
    assert chunk_units([Unit(text)], size=200, overlap=40)


PHONE_LIST = (
    "Phone list\n\n"
    + "".join(f"Ext. {100 + i}\n" for i in range(40))
    + "\n"
    + ("Calls to these extensions are forwarded " + "to the switchboard outside office hours and weekends " * 21)
)
CJK_ARTICLES = (
    "".join(f"第{i}条\n" for i in range(1, 40)) + "。".join(["这是一个很长的句子用于测试分段"] * 90) + "\n"
) * 5


@pytest.mark.parametrize("text", [PHONE_LIST, CJK_ARTICLES], ids=["sentence-nearly-a-passage", "cjk"])
def test_each_passage_adds_text_after_the_overlap_it_repeats(text):
    # A sentence nearly a passage long, after short lines: the passage before it must not be followed by
    # passages holding only its last lines, each repeated from the one before.
    pieces = chunk_units([Unit(text)], size=1200, overlap=200)
    ends = [piece.end for piece in pieces]
    assert ends == sorted(set(ends))
    assert ends[-1] == len(text.rstrip())
    assert sum(len(piece.text) for piece in pieces) < len(text) * 1.5


def test_chinese_and_japanese_sentences_end_at_their_full_stops():
    sentence = "这是一个很长的句子用于测试分段"
    text = "。".join([sentence] * 200) + "。"
    pieces = chunk_units([Unit(text)], size=1200, overlap=200)
    assert len(pieces) > 1
    assert all(piece.text.startswith(sentence) and piece.text.endswith(sentence + "。") for piece in pieces)
    japanese = "会議は十時に始まります！資料を持ってきてください？はい。"
    assert [p.text for p in chunk_units([Unit(japanese * 40)], size=100, overlap=0)][0].endswith(("。", "！", "？"))


def _wrapped(words, width=72):
    lines, line = [], ""
    for word in words.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def test_the_last_lines_of_a_section_end_its_passage_rather_than_start_one_of_their_own():
    # Hard-wrapped Markdown: the section's closing paragraph reaches a little past the passage size.
    examples = "\n".join(f"* Example {n}: pull requests and issues opened in repository {n}" for n in range(12))
    rule = _wrapped(
        "The nomination passes if no collaborators oppose it after one week. In the case of an objection, "
        "the committee works with the people involved to find a resolution. The committee may advance a "
        "nomination that has not reached consensus even if there are outstanding objections. The "
        "committee may also choose to prevent a nomination from advancing if it determines that any "
        "objections have not been adequately addressed. Every discussion is visible to the nominee."
    )
    text = f"Example of contributions:\n\n{examples}\n\n{rule}"
    assert 1200 < len(text) <= 1200 * 1.25
    pieces = chunk_units([Unit(text, section="Nominations")], size=1200, overlap=200)
    # One passage, not a second one holding the last line again after 200 characters it repeats.
    assert [p.text for p in pieces] == [text]
    # Further on, the size holds: the rest of a long section is a passage of its own.
    longer = f"{text}\n\n{rule}"
    assert len(chunk_units([Unit(longer, section="Nominations")], size=1200, overlap=200)) == 2


def test_docx_and_html_tables_are_split_under_their_header(ingest, settings):
    import docx

    settings.DOCUMENTS_CHUNK_SIZE = 500
    document = docx.Document()
    document.add_heading("Expense limits", level=1)
    table = document.add_table(rows=ROWS + 1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Category", "Limit"
    for i in range(ROWS):
        table.cell(i + 1, 0).text, table.cell(i + 1, 1).text = f"Item {i}", f"{i} euros"
    buffer = io.BytesIO()
    document.save(buffer)
    html = "<h1>Limits</h1><table><tr><th>Category</th><th>Limit</th></tr>" + "".join(
        f"<tr><td>Item {i}</td><td>{i} euros</td></tr>" for i in range(ROWS)
    )
    for name, content in (("limits.docx", buffer.getvalue()), ("limits.html", (html + "</table>").encode())):
        ingested = ingest(name, content)
        assert ingested.status == "ready", ingested.failure_reason
        parts = [c.text for c in ingested.chunks.order_by("position") if "Item" in c.text]
        assert len(parts) > 1, name
        assert all(part.lstrip("| ").startswith("Category | Limit") for part in parts), name
        found = [f"Item {i} " for i in range(ROWS) if any(f"Item {i} |" in p for p in parts)]
        assert len(found) == ROWS, name


def test_pdf_outline_gives_each_page_its_heading_path(ingest):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes())))
    top = writer.add_outline_item(title="Handbook", page_number=0)
    writer.add_outline_item(title="Expenses", page_number=1, parent=top)
    writer.add_outline_item(title="Equipment", page_number=2, parent=top)
    buffer = io.BytesIO()
    writer.write(buffer)
    document = ingest("outlined.pdf", buffer.getvalue())
    assert document.status == "ready", document.failure_reason
    sections = list(document.chunks.order_by("position").values_list("page", "section"))
    assert sections == [(1, "Handbook"), (2, "Handbook › Expenses"), (3, "Handbook › Equipment")]


def test_pdf_without_an_outline_has_pages_only(ingest):
    document = ingest("plain.pdf", pdf_bytes())
    assert set(document.chunks.values_list("section", flat=True)) == {""}


RST_POLICY = """\
==========================
Security policies
==========================

Our team is committed to responsible disclosure of security issues.

.. _reporting:

Reporting security issues
=========================

Send a description of the issue to security@example.com. You should
receive an acknowledgment within 3 working days.

Encrypted reports
-----------------

The public key ID is 0xABCDEF.

Supported versions
==================

Only the two latest feature releases get security fixes.
"""

MEMO = """\
TRAVEL POLICY

This policy applies to every trip paid by the company.

1. Booking

Book flights at least 14 days ahead through the travel desk.

1.1 Hotels

Hotels may cost up to 180 euros a night in capital cities.

Things to bring

- your badge
- a charger

2. Expenses

Submit receipts within 30 days:
1. Scan the receipt.
2. Upload it to the expense tool.
"""


def _sections(document):
    sections = {}
    for chunk in document.chunks.order_by("position"):
        sections.setdefault(chunk.section, chunk.text)
    return sections


def test_underlined_plain_text_headings_give_passages_a_section_path(ingest):
    document = ingest("policy.txt", RST_POLICY.encode())
    assert document.status == "ready", document.failure_reason
    assert document.title == "Security policies"
    sections = _sections(document)
    assert list(sections) == [
        "Security policies",
        "Security policies › Reporting security issues",
        "Security policies › Reporting security issues › Encrypted reports",
        "Security policies › Supported versions",
    ]
    # The heading leads its passage's text, without its underline.
    encrypted = sections["Security policies › Reporting security issues › Encrypted reports"]
    assert encrypted == "Encrypted reports\n\nThe public key ID is 0xABCDEF."
    assert "===" not in " ".join(sections.values())


def test_capitals_numbered_and_short_plain_text_headings(ingest):
    document = ingest("travel.txt", MEMO.encode())
    assert document.status == "ready", document.failure_reason
    assert document.title == "TRAVEL POLICY"
    sections = _sections(document)
    assert list(sections) == [
        "TRAVEL POLICY",
        "TRAVEL POLICY › 1. Booking",
        "TRAVEL POLICY › 1. Booking › 1.1 Hotels",
        "TRAVEL POLICY › 1. Booking › 1.1 Hotels › Things to bring",
        "TRAVEL POLICY › 2. Expenses",
    ]
    # A numbered list and a list under a short heading stay text.
    assert sections["TRAVEL POLICY › 1. Booking › 1.1 Hotels › Things to bring"].endswith("- your badge\n- a charger")
    assert "1. Scan the receipt.\n2. Upload it to the expense tool." in sections["TRAVEL POLICY › 2. Expenses"]


def test_plain_text_without_headings_stays_one_section(ingest):
    text = "Dear team,\n\nthe office is closed on Friday.\nPlease work from home.\n\nThanks,\nAna\n"
    document = ingest("note.txt", text.encode())
    assert set(document.chunks.values_list("section", flat=True)) == {""}
    assert document.title == "note"


def test_a_pages_navigation_is_not_searched_or_cited(ingest):
    """Menus, sidebars of links and a search box (a wiki page saved as HTML) are left out; the page's own
    text, lists and footer stay, and a role on an element that may be left open (<li>) is not followed."""
    page = (
        "<html><head><title>Intranet: Travel</title></head><body>"
        "<nav><ul><li><a href='/leave'>Parental leave policy</a><li><a href='/bonus'>Bonus schedule</a></ul></nav>"
        "<div class='sidebar' role='navigation'><div><h3>Related pages</h3><ul><li>Sabbatical rules</ul></div></div>"
        "<div role='main'><h1>Travel</h1><p>Book trains early.<br/>Hotels cost up to 120 euros a night.</p>"
        "<form role='search'><input name=q placeholder='Search the wiki'><button>Search the wiki</button></form>"
        "<ul><li>Keep every receipt.</li><li role='navigation'>Claims are paid monthly.</ul>"
        "<div role='search'/><p>Ask the travel desk.</p></div>"
        "<footer>Owned by the finance team.</footer></body></html>"
    )
    ingested = ingest("travel.html", page.encode())
    assert ingested.status == "ready", ingested.failure_reason
    assert ingested.title == "Travel"
    text = "\n".join(c.text for c in ingested.chunks.all())
    for gone in ("Parental leave policy", "Bonus schedule", "Related pages", "Sabbatical rules", "Search the wiki"):
        assert gone not in text
    for kept in ("120 euros a night", "Keep every receipt.", "Claims are paid monthly.", "Ask the travel desk."):
        assert kept in text
    assert "Owned by the finance team." in text
    assert all(c.section.startswith("Travel") for c in ingested.chunks.all())
