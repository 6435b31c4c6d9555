"""Readers of hostile or odd files: each keeps the text, in time, or says why it cannot."""

import signal
from contextlib import contextmanager

import pytest

from documents.parsers import markdown


@contextmanager
def time_limit(seconds):
    """Raise TimeoutError in this (the main) thread when the block runs longer than `seconds`; a regular
    expression's search is interrupted too."""

    def expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds} seconds")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_markdown_links_are_found_in_time_on_a_long_line_of_unclosed_ones():
    # Quadratic patterns take minutes on this 1.5 MB line (seconds on a tenth of it); linear ones milliseconds.
    line = "[a](b " * 250_000
    with time_limit(10):
        assert markdown.tidy(line) == line
        assert markdown.tidy("[" * 300_000 + "](" + "(b" * 100_000) == "[" * 300_000 + "](" + "(b" * 100_000
        assert (
            markdown.tidy(line + "[docs](https://x.example/a_(b) 'the title')")
            == line + "docs (https://x.example/a_(b))"
        )


@pytest.mark.parametrize(
    "line, tidied",
    [
        ("Use the [print portal](https://print.example) today.", "Use the print portal (https://print.example) today."),
        ('[t](u "title") and ![logo](x.png)', "t (u) and logo"),
        ("[w](https://en.wikipedia.org/wiki/A_(b)).", "w (https://en.wikipedia.org/wiki/A_(b))."),
        ("[![badge](b.svg)](https://ci.example)", "badge (https://ci.example)"),
        ("a [bracket] and (parentheses) alone", "a [bracket] and (parentheses) alone"),
    ],
)
def test_markdown_links_and_images_become_their_text(line, tidied):
    assert markdown.tidy(line) == tidied


def read(parser, tmp_path, content, name="file"):
    """(title, [(section, text)]) of a file read by a parser module."""
    from documents.parsers.base import Budget, Limits, Title

    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    limits = Limits()
    title, units = "", []
    for item in parser.parse(path, limits, Budget(limits), lambda done, total: None):
        if isinstance(item, Title):
            title = item.text
        else:
            units.append((item.section, item.text))
    return title, units


@pytest.mark.parametrize(
    "page, sections",
    [
        (  # </head> may be left out: the body's first element ends the head
            "<!DOCTYPE html><html><head><meta charset=utf-8><title>Canteen menu</title>"
            "<body><h1>Canteen</h1><p>Soup of the day costs 3 euros.</p></body></html>",
            [("Canteen", "Canteen\n\nSoup of the day costs 3 euros.")],
        ),
        (  # and so does text
            "<head><title>Menu</title>Soup costs 3 euros.<p>Bread is free.</p>",
            [("", "Soup costs 3 euros.\n\nBread is free.")],
        ),
        (  # a heading closed by another heading's end tag
            "<h1>Handbook</h1><h2>Overtime</h3><p>Overtime is paid at 150 percent.</p>"
            "<h2>Holidays</h2><p>There are 12 public holidays.</p>",
            [
                ("Handbook › Overtime", "Overtime\n\nOvertime is paid at 150 percent."),
                ("Handbook › Holidays", "Holidays\n\nThere are 12 public holidays."),
            ],
        ),
        (  # a heading never closed ends where a paragraph starts
            "<h1>Handbook<p>Employees receive a laptop allowance of 900 euros.</p>",
            [("Handbook", "Handbook\n\nEmployees receive a laptop allowance of 900 euros.")],
        ),
        (  # or at the next heading, or at the end of the page
            "<h1>Handbook<h2>Travel<div>Trains are booked in second class.</div>",
            [("Handbook › Travel", "Travel\n\nTrains are booked in second class.")],
        ),
        ("<h1><h2>" * 50_000 + "Deep text.", [("Deep text.", "Deep text.")]),
        ("<h1><div class=title>Handbook</div></h1><p>Laptops.</p>", [("Handbook", "Handbook\n\nLaptops.")]),
        (  # what a <noscript> in the head holds does not end the head: the title stays out of the text
            "<html><head><meta charset=utf-8><noscript><img src=pixel.gif></noscript><title>Canteen menu</title>"
            "<link rel=stylesheet href=a.css></head><body><p>Soup costs 3 euros.</p></body></html>",
            [("", "Soup costs 3 euros.")],
        ),
    ],
)
def test_html_text_is_kept_whatever_tags_are_left_open(tmp_path, page, sections):
    from documents.parsers import html

    assert read(html, tmp_path, page, "page.html")[1] == sections


def test_an_empty_heading_before_many_blocks_is_read_in_time(tmp_path):
    # Joining the heading's text at every block would take seconds here (quadratic); a flag, milliseconds.
    from documents.parsers import html

    page = "<h1>" + "<p>\n" * 80_000 + "Text"
    with time_limit(3):
        title, sections = read(html, tmp_path, page, "page.html")
    assert sections == [("Text", "Text")]


FRENCH = "Le café est à gauche du bureau. Naïve rêveuse, où est la forêt ?"
RUSSIAN = "Отпуск составляет двадцать семь дней в году. Сотрудники могут перенести пять дней."


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("text", [FRENCH, RUSSIAN], ids=["french", "russian"])
def test_utf_16_and_32_without_a_byte_order_mark(codec, text):
    from documents.parsers.encoding import decode

    assert decode(text.encode(codec)) == text


@pytest.mark.parametrize(
    "text, codec",
    [
        ("Naïve café", "cp1252"),
        ("He said “don’t” – it costs €5… naïve", "cp1252"),
        ("Perché la città è più bella così, però non è vero.", "cp1252"),
        ("Não há opções de ação; a informação está disponível.", "cp1252"),
        ("Zażółć gęślą jaźń. Pracownicy otrzymują dwadzieścia sześć dni urlopu.", "cp1250"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy. Vedoucí oddělení schválil dovolenou.", "cp1250"),
        ("Árvíztűrő tükörfúrógép. A munkavállalók évente huszonöt nap szabadságot kapnak.", "cp1250"),
        (RUSSIAN, "cp1251"),
        ("Οι υπάλληλοι έχουν είκοσι επτά ημέρες άδεια το χρόνο.", "cp1253"),
        ("Çalışanlar yılda yirmi altı gün izin alır. Şirket öğle yemeği verir.", "cp1254"),
    ],
)
def test_western_code_page_is_preferred_unless_the_text_is_another_language(text, codec):
    from documents.parsers.encoding import decode

    assert decode(text.encode(codec)) == text


@pytest.mark.parametrize(
    "text, codec",
    [
        ("Poročilo o delu za leto 2023. Računovodstvo je pripravilo poročilo o poslovanju.", "cp1250"),
        ("Računovodstvo i financije. Izvješće o poslovanju za prošlu godinu.", "cp1250"),
        ("Slovenské zamestnanci majú nárok na dovolenku. Ľudské zdroje, účtovníctvo.", "cp1250"),
        ("Pracownicy otrzymują urlop za pracę oraz świadczenia socjalne.", "cp1250"),
        ("Kuća je velika. Noć je bila duga. Ćevapi su dobri.", "cp1250"),
        ("Vedoucí oddělení schválil dovolenou. Člověk může přijít.", "cp1250"),
        ("Naïve café.", "cp1252"),
        ("Café naïve résumé", "cp1252"),
        ("Naïve café, crème brûlée.", "cp1252"),
        ("The café's naïve décor; the fiancée's résumé and her protégé's rôle.", "cp1252"),
        ("L'élève a réussi l'examen; il est très fier de son père.", "cp1252"),
        ("Die Bewerbung für die Stelle im Büro ist bis Freitag möglich. Grüße.", "cp1252"),
        ("Ich wohne in Zürich. Das Café öffnet um 8 Uhr. Naïve Kunst.", "cp1252"),
        ("¿Dónde está la oficina? La señora Muñoz llega mañana.", "cp1252"),
        ("Mañana el niño irá a la piscina. La señora Muñoz está aquí.", "cp1252"),
        ("Lunedì la città è chiusa; però il caffè è aperto. Più tardi.", "cp1252"),
        ("Você tem três dias de férias. A informação não está disponível.", "cp1252"),
        ("Vi ses på kontoret i morgon. Mötet är på fredag.", "cp1252"),
        ("Brugeren skal være logget ind. Næste møde er på søndag.", "cp1252"),
    ],
)
def test_central_european_letters_are_not_read_as_western_ones_nor_western_as_central(text, codec):
    from documents.parsers.encoding import decode

    assert decode(text.encode(codec)) == text


def test_bytes_after_the_sample_that_do_not_fit_choose_the_encoding_again():
    from documents.parsers.encoding import SAMPLE_BYTES, decode

    ascii_lines = b"Plain ASCII line of the report.\n" * (SAMPLE_BYTES // 32 + 2000)
    assert len(ascii_lines) > SAMPLE_BYTES
    assert decode(ascii_lines + "Naïve café.".encode("cp1252")).endswith("Naïve café.")


@pytest.mark.parametrize("data", [b"<h1>Hea\x00ding</h1><p>Lunch is at noon.</p>", b"a\x00b\x00c\x00 plain text after"])
def test_a_few_nuls_in_ascii_text_are_not_utf_16(data):
    from documents.parsers.encoding import decode

    assert decode(data) == data.decode("ascii")


def test_a_csv_quote_left_open_before_more_than_the_field_limit_is_read_as_a_plain_character(tmp_path):
    import csv as stdlib_csv

    from documents.parsers import csv
    from documents.parsers.base import ParseError

    limit = stdlib_csv.field_size_limit()
    rows = "".join(f"Person {i},Dept {i}\n" for i in range(limit // 10))
    assert len(rows) > limit
    units = read(csv, tmp_path, 'Name,Dept\nAlice,"HR\n' + rows, "open.csv")[1]
    lines = "\n".join(text for _, text in units).splitlines()
    assert lines[0] == 'Name: Alice; Dept: "HR'
    assert lines[-1] == f"Name: Person {limit // 10 - 1}; Dept: Dept {limit // 10 - 1}"
    assert len(lines) == 1 + limit // 10
    assert stdlib_csv.field_size_limit() == limit
    # A quoted field that long, closed, is still refused.
    with pytest.raises(ParseError, match="field limit"):
        read(csv, tmp_path, 'Name,Notes\nAlice,"' + "x" * (limit + 10) + '"\nBob,ok\n', "long.csv")


def test_a_csv_quote_left_open_does_not_take_the_rows_after_it(tmp_path):
    from documents.parsers import csv

    content = b'name,amount,notes\nalice,100,"unterminated quote\nbob,200,fine\ncarol,300,ok\n'
    assert read(csv, tmp_path, content, "open.csv")[1] == [
        (
            "rows 2–4",
            'name: alice; amount: 100; notes: "unterminated quote\n'
            "name: bob; amount: 200; notes: fine\n"
            "name: carol; amount: 300; notes: ok",
        )
    ]
    # Closed quotes keep their commas and line breaks, the last row's too.
    content = b'name,amount,notes\nalice,100,"a, b"\nbob,200,"two\nlines"\n'
    assert read(csv, tmp_path, content, "closed.csv")[1] == [
        ("rows 2–3", "name: alice; amount: 100; notes: a, b\nname: bob; amount: 200; notes: two\nlines")
    ]
