"""The embedded default: extractive answers from the passages in the messages.

No network. It finds the question (the last user message, or the text
after "Question:" in it) and the passages supplied with it, scores every
sentence of every passage by meaning (the static embedding model) and the
question words it contains (rarer words count more), has the best few read
by a contextual sentence model when its package is installed
(llmgateway/contextual.py), and quotes the best with their labels. It says
plainly when no passage answers the question, and when there are no
passages at all (no generative model is configured).

Passages are recognised in any message as
- `<passage id="3">…</passage>` (or `<document …>` / `<source …>`) blocks, or
- blocks that start with a label in brackets, `[3] …` or `[handbook.pdf p.2] …`,
  running until a blank line or the next label, or
- the content of `tool` messages.
Token counts are local estimates (about four characters a token).
"""

import json
import math
import re
import time
from dataclasses import dataclass

from llmgateway.providers.base import (
    Provider,
    ProviderError,
    chunk_dict,
    chunks_from_response,
    completion_id,
    response_dict,
)

NO_MODEL = (
    "No generative model is configured, and no passages were supplied to answer from. "
    "The offline model can only quote from passages given with the question."
)
MAX_QUOTES = 3

_TAG_RE = re.compile(r"<(passage|document|source)\b([^>]*)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_ID_RE = re.compile(r"""\b(?:id|name|title|source)\s*=\s*["']([^"']{1,80})["']""", re.IGNORECASE)
_LABEL_RE = re.compile(r"^\s*\[([^\[\]\n]{1,80})\]\s*(.*)$")
_QUESTION_RE = re.compile(r"(?:^|\n)[^\S\n]*(?:question|q)[^\S\n]*:\s*(.+)", re.IGNORECASE | re.DOTALL)
# Sentence ends; blank lines; list items; and a line that starts with a capital (a heading,
# a table or CSV row) — but not a line a PDF wrapped mid-sentence, which goes on in lower case, and not after
# an abbreviation ("ie.", "e.g.", "cf.", "vs.") that a capital or a quotation follows.
# Every pattern of this module runs on text a caller supplies: none may hold two quantifiers that
# can take the same characters in turn (`\s*` after `.+?`, `\s*` before `\s*`), which backtracks
# in time quadratic or cubic in a line's length; trailing spaces are stripped in Python instead.
_SENTENCE_RE = re.compile(
    r"(?<=[.!?])(?<!\bie\.)(?<!\beg\.)(?<!\bi\.e\.)(?<!\be\.g\.)(?<!\bcf\.)(?<!\bvs\.)\s+(?=[A-Z0-9\"'(\[])"
    r"|\n{2,}|\n(?=[^\S\n]*(?:[-*•+]|\d{1,2}[.)]|#\.)\s)|\n(?=[A-Z])"
)
_NUMBERED = re.compile(r"^(\d{1,2}[.)]|#\.)\s+")
_LETTER = re.compile(r"[^\W\d_]")
_ENDS = re.compile(r"[.!?][\"')\]”’]*\s*$")  # a sentence's end, after any closing quote or bracket
_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves tell please explain
    describe give know say said says much many does did""".split()  # noqa: SIM905 - a word list reads better as text
)


def estimate_tokens(text):
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _stem(word):
    """A light stemmer: plurals, -ed and -ing off, a final e and a doubled consonant reduced.

    "cycles", "cycle" → "cycl"; "booked", "booking", "books" → "book"; "policies" → "policy".
    """
    word = word.lower().strip("'-")
    if len(word) > 4 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("us", "ss")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "ls":
        word = word[:-1]
    return word


def terms(text):
    found = []
    for word in _WORD_RE.findall(text):
        # A hyphenated word also counts as its parts ("BW-Connect" answers "connect").
        for part in [word, *word.split("-")] if "-" in word.strip("-") else [word]:
            if part.lower() not in STOPWORDS and len(part) > 1:
                found.append(_stem(part))
    return found


def _labelled_blocks(text):
    """[label] blocks: (label, text) until a blank line or the next label."""
    blocks, label, lines = [], None, []
    for line in text.splitlines():
        match = _LABEL_RE.match(line)
        if match:
            if label is not None:
                blocks.append((label, "\n".join(lines)))
            label, lines = match.group(1).strip(), [match.group(2)]
        elif label is not None and line.strip():
            lines.append(line)
        elif label is not None:
            blocks.append((label, "\n".join(lines)))
            label, lines = None, []
    if label is not None:
        blocks.append((label, "\n".join(lines)))
    return [(label, body.strip()) for label, body in blocks if body.strip()]


def split_question_and_passages(messages):
    """(question, [(label, passage text, source)]) from OpenAI-style messages."""
    question = ""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    passages = []
    for index, message in enumerate(messages):
        text = _text(message.get("content"))
        if message.get("role") == "tool":
            passages.append((message.get("name") or message.get("tool_call_id") or str(len(passages) + 1), text, ""))
            continue
        if index == last_user:
            match = _QUESTION_RE.search(text)
            if match:
                question = match.group(1).strip()
                text = text[: match.start()]
            else:
                question = _TAG_RE.sub("", text).strip()
                question = (
                    "\n".join(line for line in question.splitlines() if not _LABEL_RE.match(line)).strip() or question
                )
        for tag in _TAG_RE.finditer(text):
            found = _ID_RE.search(tag.group(2))
            source = _SOURCE_RE.search(tag.group(2))
            passages.append(
                (
                    found.group(1) if found else str(len(passages) + 1),
                    tag.group(3).strip(),
                    source.group(1) if source else "",
                )
            )
        passages.extend((label, body, "") for label, body in _labelled_blocks(_TAG_RE.sub("", text)))
    return question, [(label, body, source) for label, body, source in passages if body.strip()]


def sentences(text):
    parts = (_NUMBERED.sub("", s.strip(" \n\t-*•+")) for s in _SENTENCE_RE.split(text) if s)
    return [s for s in parts if len(s.strip()) > 2 and _LETTER.search(s)]  # not a bare number ("3.1.")


_TABLE_RULE = re.compile(r"^\s*(?:\|\s*)?:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*(?:\|\s*)?$")
_URL_RE = re.compile(r"\(?https?://\S+\)?|(?<!\S)\S+\.(com|org|net|io|example)\S*")


def _cells(line):
    """The cells of a table row written with pipes ("a | b | c" or "| a | b |"); None for other lines."""
    if line.count("|") < 1 + (line.strip().startswith("|") + line.strip().endswith("|")):
        return None
    cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
    return cells if len(cells) >= 2 else None


def _row_sentence(header, cells):
    """A table row as a sentence that carries its column names: "City: Lisbon; Hotel limit: 180 euros"."""
    if not header or len(header) != len(cells):
        return "; ".join(cell for cell in cells if cell)
    return "; ".join(f"{name}: {cell}" if name else cell for name, cell in zip(header, cells, strict=True) if cell)


def _squash(text):
    return " ".join(re.sub(r"[*_`#]", "", text).lower().split())


# Plain-text markup: a line under (or over) a heading in reStructuredText or setext Markdown; a
# reStructuredText link target, substitution or comment (no text to quote); a directive
# (".. note::", ".. admonition:: Title"); inline roles, literals and link references.
_UNDERLINE = re.compile(r"^\s*([=\-~^*#+`\"'.:_])\1{2,}\s*$")
_RST_TARGET = re.compile(r"^\s*\.\.(\s+(_[^:]*:|\|[^|]+\|).*|\s*)$")
_RST_DIRECTIVE = re.compile(r"^\s*\.\.\s+([\w-]+)::\s*(.*)$")
_RST_ROLE = re.compile(r":[\w-]+(?::[\w-]+)?:`~?([^`<]*)(?:<[^>`]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+)(?:<[^>`]*>)?`__?")
_RST_LITERAL = re.compile(r"``([^`]+)``")
_RST_REFERENCE = re.compile(r"(?<=\w)__?(?=[\s.,;:)!?]|$)")
# A Markdown link reference definition ("[Code of Conduct]: https://…"): where a link goes, not a sentence.
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]{1,200}\]:[ \t]*<?[^\s>]+>?[ \t]*(?:[\"'(][^\n]*)?$")
_ATX_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+)$")  # its closing hashes are stripped by _heading
_LIST_ITEM = re.compile(r"^\s*([-*•+]|\d{1,2}[.)]|#\.)\s")
_RECORD = re.compile(r"\w: [^;]+; \S")
WRAP_WIDTH = 100  # characters
WRAPPED_LINE = 50  # characters: a longer line that does not end a sentence goes on in the next one
MARKUP_LINE = 1000  # characters: a longer line is no heading, directive or marked-up text; it is taken as it is


def _heading(text):
    """An ATX heading's text without its closing hashes ("Title ##" -> "Title")."""
    return (text.rstrip().rstrip("#").rstrip() or text[:1]).strip()


def _role(match):
    text = match.group(1).rstrip()
    return text.rsplit(".", 1)[-1] if text.startswith("~") else text


def _link(match):
    return match.group(1).rstrip() or match.group(1)[:1]


def plain(text):
    """Inline markup of reStructuredText (and Markdown bold) as the words a reader sees."""
    text = _RST_ROLE.sub(_role, text)
    text = _RST_LITERAL.sub(r"\1", text)
    text = _RST_LINK.sub(_link, text)
    text = _RST_REFERENCE.sub("", text)
    return text.replace("**", "")


def _unwrap(lines):
    """Lines as a reader sees them: markup lines dropped, headings marked, wrapped lines joined.

    Returns (line, is_heading) pairs; a blank line stays as a paragraph break.
    """
    out = []
    # Hard-wrapped text (plain text, reStructuredText, a PDF's lines) has no line longer than about 100
    # characters; a record ("Name: value; Other: value") is a line of its own.
    wrapped = max((len(line) for line in lines), default=0) <= WRAP_WIDTH
    for at, line in enumerate(lines):
        if len(line) > MARKUP_LINE:
            out.append((line, False, True))
            continue
        if _UNDERLINE.match(line) and not _cells(line):
            if out and out[-1][0].strip() and len(out[-1][0]) < 100 and not out[-1][1]:
                out[-1] = (out[-1][0].strip(), True, False)
            continue
        if _RST_TARGET.match(line) or _LINK_DEFINITION.match(line):
            continue
        atx = _ATX_HEADING.match(line)
        if atx:
            out.append((_heading(atx.group(1)), True, False))
            continue
        if _labels_list(lines, at):
            out.append((line.strip(), True, False))
            continue
        directive = _RST_DIRECTIVE.match(line)
        if directive:
            if directive.group(2).strip():
                out.append((plain(directive.group(2).strip()), True, False))
            continue
        previous = out[-1][0] if out else ""
        if (
            wrapped
            and out
            and not out[-1][1]
            and not _RECORD.search(previous)
            and line.strip()
            and len(previous) >= WRAPPED_LINE
            and not re.search(r"[.!?:;|]\s*$", previous)
            and not _LIST_ITEM.match(line)
            and _cells(line) is None
            and _cells(previous) is None
        ):
            out[-1] = (f"{previous.rstrip()} {line.strip()}", False, False)
            continue
        out.append((line, False, False))
    return [(line if done else plain(line), is_heading) for line, is_heading, done in out]


def _labels_list(lines, at):
    """Whether lines[at] is a label over a list: a short line of its own after a blank line (or first),
    not a sentence, not a list item or table row itself, with a list item right below it."""
    line = lines[at].strip()
    return (
        0 < len(line.split()) <= LABEL_WORDS
        and (at == 0 or not lines[at - 1].strip())
        and at + 1 < len(lines)
        and _LIST_ITEM.match(lines[at + 1]) is not None
        and not _LABEL_END.search(line)
        and not _LIST_ITEM.match(lines[at])
        and _cells(line) is None
    )


def _indent(line):
    return len(line) - len(line.lstrip())


def _nest(lines):
    """A list item that is only a label, with its sub-items, as one line: "High: Remote code execution; SQL injection"."""
    out, at = [], 0
    while at < len(lines):
        line = lines[at]
        label = _NUMBERED.sub("", line.strip().lstrip("-*•+ ")).strip()
        items, following = [], at + 1
        if _LIST_ITEM.match(line) and len(label.split()) <= 6 and not re.search(r"[.!?;,]$", label):
            while following < len(lines) and (
                not lines[following].strip()
                or (_LIST_ITEM.match(lines[following]) and _indent(lines[following]) > _indent(line))
            ):
                if lines[following].strip():
                    items.append(_NUMBERED.sub("", lines[following].strip().lstrip("-*•+ ")).strip())
                following += 1
        if items:
            out.append(f"{line[: _indent(line)]}- {label.rstrip(':')}: {'; '.join(items)}")
            at = following
            continue
        out.append(line)
        at += 1
    return out


def passage_parts(body, source="", sections=None):
    """(headings, sentences) of a passage, in reading order: context and candidate answers.

    `sections`, a list, receives for each sentence the heading it stands under ("" for none).

    The passage's own heading (its first line, when the source's heading path names it) and
    table headers are context; each table row becomes one sentence that names its columns;
    a question in the text is one unit with the sentence that answers it.
    """
    lines = body.strip().splitlines()
    headings = []
    if lines and len(lines[0]) < 200 and _squash(lines[0]) and _squash(lines[0]) in _squash(source):
        headings.append(lines[0].strip())
        lines = lines[1:]
    parts, prose, header, under, current = [], [], None, [], (headings[0] if headings else "")

    def flush():
        if prose:
            found = sentences("\n".join(_nest(prose)))
            parts.extend(found)
            under.extend([current] * len(found))
            prose.clear()

    for line, is_heading in _unwrap(lines):
        if is_heading:
            flush()
            header = None
            headings.append(line)
            current = line
            continue
        cells = _cells(line)
        if cells is None:
            if line.strip():  # a blank line does not end a table; text does
                header = None
            if line.strip().endswith("?") and len(line.split()) < 20 and (not prose or not prose[-1].strip()):
                flush()
                headings.append(line.strip())  # a question on a line of its own heads its answer (an FAQ)
                current = line.strip()
                continue
            prose.append(line)
            continue
        flush()
        if _TABLE_RULE.match(line):
            continue
        if header is None:
            header = cells
            headings.append("; ".join(c for c in cells if c))
            continue
        parts.append(_row_sentence(header, cells))
        under.append(current)
    flush()
    merged, merged_under = [], []
    for part, heading in zip(parts, under, strict=True):
        if merged and merged[-1].rstrip().endswith("?") and not _is_heading(part):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
            merged_under.append(heading)
    if sections is not None:
        sections.extend(merged_under)
    return headings, merged


class _Headings:
    """The heading each sentence of the passages stands under (`passage_parts`' sections), read once a passage.

    `headings(passage, order)`: the heading of sentence `order` of passage `passage`, "" for none.
    """

    def __init__(self, passages):
        self.passages, self.found = passages, {}

    def __call__(self, passage, order):
        if passage not in self.found:
            self.found[passage] = []
            passage_parts(self.passages[passage][1], self.passages[passage][2], self.found[passage])
        under = self.found[passage]
        return under[order] if 0 <= order < len(under) else ""


# Question kinds and what a sentence that answers them holds (language patterns, not topics).
_ASKS_NUMBER = re.compile(
    r"\bhow (many|much|long|often|old|far|big|large|soon|frequently)\b|\bwhat (percentage|percent|share|portion|"
    r"part|proportion|amount|number|fraction|rate)\b|\bhow \w+ (days|weeks|months|years|hours)\b",
    re.IGNORECASE,
)
# "How often …": a sentence saying how many times in a period answers it, not just any number.
_ASKS_FREQUENCY = re.compile(r"\bhow (often|frequently)\b|\bhow many times\b", re.IGNORECASE)
_FREQUENCY = re.compile(
    r"\b(every|each|per|once|twice|daily|weekly|fortnightly|monthly|quarterly|yearly|annually|"
    r"a (day|week|month|quarter|year))\b|\d+ times",
    re.IGNORECASE,
)
# An amount stated without a figure ("as long as you need", "there is no limit").
_NO_LIMIT = re.compile(
    r"\b(unlimited|no (upper )?limit|no cap|as (long|much|many|often) as|free of charge|at no cost)\b", re.I
)
# "What is the notice period / the default number / the fee …": a quantity named rather than asked with "how",
# which only a figure answers (a standalone one: "37signals" or "3-clause" is no amount).
_ASKS_AMOUNT_NOUN = re.compile(
    r"\b(what|which)('s|\s+is|\s+are|\s+was)?\s+(the\s+)?(\w+\s+){0,2}(number|amount|rate|percentage|period|"
    r"duration|length|limit|cost|price|fee|size|age|count|maximum|minimum)\b",
    re.IGNORECASE,
)
# Words that state an amount without a figure.
_NUMBER_WORDS = (
    r"\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"once|twice|half|double|percent|dozen)\b"
)
_AMOUNT = re.compile(r"(?<!\w)\d+(?:[.,:]\d+)*(?!\d|[A-Za-z]{3})|" + _NUMBER_WORDS, re.IGNORECASE)
# "one" before a modal verb is no amount: "in the same way one would review a change".
_PRONOUN_ONE = re.compile(r"\bone (?=(would|can|could|should|may|might|must|will|needs?|has|is)\b)", re.I)
_ASKS_TIME = re.compile(r"\bwhen\b|\bwhat (time|date|day)\b|\bwhich (day|date|month|year)\b|\bdeadline\b", re.I)
_ASKS_NAME = re.compile(r"\bwho(m|se)?\b|\bwhich (company|person|team|provider|vendor|tool|service|app)\b", re.I)
_ASKS_PLACE = re.compile(r"\bwhere\b", re.IGNORECASE)
# "Which version / release / port …": a figure answers it ("pip 20.3", "port 9418").
_ASKS_VERSION = re.compile(r"\bwhich (\S+ ){0,2}?(versions?|releases?|ports?)\b", re.IGNORECASE)
# "Which airline / command / hook …": a name, a term or a figure answers it, not a sentence of common words
# ("you just need to book your flights" does not say which airline).
_ASKS_WHICH = re.compile(r"^\W*which \w+ (\w+ )?(do|does|did|is|are|was|should|can|will|would|must)\b", re.I)
_CITATION = re.compile(r"\[\w{1,8}\]")
_TERM = re.compile(
    r"(?<=\w[ ,(:;/])[A-Z][\w&'-]*|\b[A-Za-z]+\d|\d+\.\d|`|[\"“‘][^\"”’]{1,40}[\"”’]|\b\w+[._]\w+|\b[a-z]+[A-Z]\w*|"
    r"(?<!\w)--?[a-z]|\b[A-Z][\w&'-]*(?=: )"
)
_NUMBER = re.compile(r"\d|" + _NUMBER_WORDS, re.IGNORECASE)
_TIME = re.compile(
    r"\d|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|july|"
    r"august|september|october|november|december|daily|weekly|monthly|yearly|annually|every|after|before|until|"
    r"during|end of|start of|beginning|first|last|each|week|month|year|day|morning|afternoon|evening)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<=\w[ ,(])[A-Z][\w&'-]+|@|\b[A-Z]{2,}\b")
_PLACE = re.compile(r"(?<=\w[ ,(])[A-Z][\w'-]+|https?://|\b\d+\b|\b(floor|room|office|street|building|portal|site)\b")
# "What is the phone number / address / email of …": only a sentence holding one answers it.
_ASKS_CONTACT = re.compile(
    r"^\s*(what|where)('s|\s+is|\s+are|\s+can i find)\b.*\b(phone|telephone|fax|postal address|street address|"
    r"address|e-?mail address|e-?mail|website|url)\b",
    re.IGNORECASE,
)
_CONTACT = re.compile(r"\d{2,}|@|https?://|www\.|\.\w{2,3}/|\b(street|road|avenue|rua|straat|strasse)\b", re.I)
# A sentence that does not name its subject ("A (very) low-traffic list for …", "This list …"): its heading does.
_NAMES_NO_SUBJECT = re.compile(
    r"^(an?|this|these|it|they|here|both)\b|\bthis (list|section|page|team|role|group)\b", re.I
)
# A sentence that refers back to the one before it for what it is about.
_REFERS_BACK = re.compile(r"^(it|its|this|these|they|their|here|that|those|such)\b", re.IGNORECASE)
# A sentence that opens with its verb ("Runs before the package is packed.", "Does not run during publish."),
# as the items under a term do: the term, its heading, is its subject. Not a plural subject ("Scopes have …").
_OPENS_WITH_VERB = re.compile(
    r"^(does|do not|is|are|has|can|will|must|may|should)\b|^[A-Z][a-z]{2,}s (?!(are|were|have|had|can|could|will|"
    r"would|may|might|must|should|need|do|don't|of|in|on|for|to|the|and|or|that|which|with|by|from|as|at)\b)"
)
# A label over a list: a short line of its own, no sentence, right above list items ("prepublishOnly" over
# "* Runs BEFORE the package is packed, ONLY on npm publish."), as pages whose items have no heading level
# write a term and what it does. A bold sentence ("You must never enable debug.") is no label.
LABEL_WORDS = 4
_LABEL_END = re.compile(r"[.!?:;,]\**$")
# "What should I do …", "How do I …": an instruction answers it ("Call the helpdesk …", "You should …").
_ASKS_ACTION = re.compile(
    r"\bwhat (should|do|must|can|shall) (i|we|you|they|staff|employees)\b.*\bdo\b|\bhow (do|can|should|must) (i|we)\b",
    re.IGNORECASE,
)
_ACTION = re.compile(
    r"^(please |first,? |then )?(use|call|take|send|ask|contact|open|go|book|submit|file|tell|check|make|write|email|"
    r"mail|install|choose|pick|let|register|report|follow|talk|ping|reach|request|fill|log|add|keep|read|visit|"
    r"sign|apply|notify|inform|speak|bring|return|hand|print|enter|select|click|complete|review|see)\b|"
    r"\b(you|we|staff|employees|everyone) (should|must|need to|have to)\b",
    re.IGNORECASE,
)
# "Can I …?", "Am I allowed to …?": a sentence that says what may or may not be done answers it.
_ASKS_PERMISSION = re.compile(r"^\s*(can|may|could) (i|we|staff|employees)\b|\b(allowed|permitted|ok|okay)\b", re.I)
_PERMISSION = re.compile(
    r"\b(fine|ok|okay|allowed|permitted|welcome to|free to|not allowed|never|must not|prohibited|no problem|"
    r"do not|don['’]t|can['’]t|cannot|may not|should not|shouldn['’]t)\b",
    re.IGNORECASE,
)
_SEARCHED_RE = re.compile(r"^[^\S\n]*searched[^\S\n]*:\s*(.+)", re.IGNORECASE | re.MULTILINE)
_SOURCE_RE = re.compile(r"""\bsource\s*=\s*["']([^"']{1,300})["']""", re.IGNORECASE)

# Weights of a sentence's score, and the least score that counts as an answer. The threshold is
# set from questions the documents cannot answer (bench/answer_quality.py): below it, the
# answerer says it found nothing rather than quote the nearest sentence.
W_MEANING, W_WORDS, W_PASSAGE, W_KIND, W_RANK = 0.5, 0.3, 0.12, 0.15, 0.04
W_PHRASE = 0.1  # the question's words side by side in the sentence, as in the question
ANSWER_THRESHOLD = 0.43
SECOND_SENTENCE = 0.9  # another sentence joins the answer when it scores this share of the best
MIN_WORDS = 4
SHORT_ANSWER = 15  # words: a shorter answer brings the next sentence of its passage along
LIST_AFTER_COLON = 4  # sentences that a sentence ending in ":" brings along (the list it announces)
LONG_SENTENCE = 45  # words
HEADING_WORD = 0.6  # a question word in the sentence's heading, against one in the sentence
CONTEXT_MEANING = 0.5  # the weight of the heading path in a sentence's meaning
# The contextual judge (llmgateway/contextual.py, all-MiniLM-L6-v2): it reads the question and the
# best few sentences (each with its heading) as sentences, not as bags of words, and so tells a
# paraphrase of what a sentence says from a question whose topic the passages lack. Its cosine
# joins the score of those sentences; the threshold then applies to the combined score.
CONTEXTUAL = True  # False: judge with the static model alone (as when the model is not installed)
JUDGE_CANDIDATES = 8  # sentences the contextual model reads per question (its cost is per token)
JUDGE_WORDS = 48  # of each: the rest of a long sentence (a wide table row) costs more than it tells
W_CONTEXTUAL = 1.0
CONTEXTUAL_THRESHOLD = 0.8  # besides ANSWER_THRESHOLD on the static score, the least combined score
# An answer stands out: the closest sentence by the contextual model is closer to the question than the
# other candidates are on average by this much. When the documents lack the question's topic, the
# retrieved sentences are all about equally near it (same words, neighbouring topics).
STANDOUT = 0.1
SUPPORT_SHARE = 0.7  # another passage stating the answer's fact is cited from this share of the best static score
STANDOUT_CANDIDATES = 4  # with fewer candidates (a short document) there is nothing to stand out from
# A strong verdict of the contextual model (its closest sentence this near the question and standing out
# by this much) lets a sentence through whose static score (shared words, static meaning) is as low as
# STRONG_FLOOR: a paraphrase shares few words with its answer, which the contextual model still reads.
STRONG_COSINE, STRONG_STANDOUT, STRONG_FLOOR = 0.65, 0.15, 0.30
# Corroborated evidence: the closest sentence standing out by STRONG_STANDOUT, at least CORROBORATED_COSINE near
# the question, with another sentence of the same passage within CORROBORATED_GAP of it, lets a sentence through
# from STRONG_FLOOR as well. A passage about what was asked says it more than once ("… can never be reused. In
# order to publish the package again, you must use a new version number."); where the documents lack it, the
# nearest sentences are near-misses of different passages, or one sentence well ahead of its neighbours.
CORROBORATED_COSINE, CORROBORATED_GAP = 0.5, 0.02
# Scattered evidence: when MAX_QUOTES sentences of more than one passage score within SECOND_SENTENCE of
# the best, the passages hold several half-answers rather than one answer, and the closest sentence must
# stand out by this much (rather than STANDOUT).
SCATTERED_STANDOUT = 0.14
# Common words: a word of the question that every retrieved passage holds (the product's name, the topic
# all of them share) tells nothing about which sentence answers. An answer that shares with the question
# only such words needs a static score of COMMON_WORDS_FLOOR rather than ANSWER_THRESHOLD; counted from
# COMMON_MIN_PASSAGES passages (with fewer, every word of a short document would be common).
COMMON_WORDS_FLOOR = 0.53
COMMON_MIN_PASSAGES = 3


def refusal(scope="", nearest=()):
    """The answer when no sentence answers: what was searched, and where the closest passages were."""
    text = f"I couldn't find this in {scope or 'the documents I searched'}."
    if nearest:
        names = " and ".join(f"“{title}”" for title in nearest)
        text += f" The closest passages, in {names}, don’t answer it."
    return text


def _question_kind(question):
    for pattern, kind in (
        (_ASKS_FREQUENCY, _FREQUENCY),
        (_ASKS_NUMBER, _NUMBER),
        (_ASKS_TIME, _TIME),
        (_ASKS_NAME, _NAME),
        (_ASKS_PLACE, _PLACE),
        (_ASKS_ACTION, _ACTION),
        (_ASKS_PERMISSION, _PERMISSION),
    ):
        if pattern.search(question):
            return kind
    return None


class _NewName:
    """A name that the question does not already say: "Who looks after the Facebook page?" is
    not answered by a sentence whose only name is "Facebook"."""

    def __init__(self, pattern, question):
        self.pattern = pattern
        self.said = {w.lower().removesuffix("'s") for w in _WORD_RE.findall(question)}

    def search(self, text):
        for match in self.pattern.finditer(text):
            if match.group().lower().removesuffix("'s") not in self.said:
                return match
        return None


def _answer_kind(question):
    """What a sentence must hold to answer the question (an object with `search`), or None."""
    kind = _question_kind(question)
    return _NewName(kind, question) if kind is _NAME else kind


def _is_heading(sentence):
    """A short line with no sentence end and no figure: a heading or label, context rather than an answer."""
    words = _URL_RE.sub(" ", sentence).split()  # a bare link is a pointer, not an answer
    return (
        len(words) < MIN_WORDS
        and not re.search(r"\d", " ".join(words))
        or (len(words) < 12 and not re.search(r"[.!?:;)]$", sentence) and sentence.istitle())
    )


def _embed(texts):
    """Unit vectors of the texts from the local embedding model; None when it cannot load."""
    try:
        from llmgateway.embeddings import embed_locally

        return embed_locally(texts)
    except Exception:  # noqa: BLE001 - the answerer still works from the words alone
        return None


def _cite(sentence, *labels):
    sentence = " ".join(sentence.split())
    marks = "".join(f"[{label}]" for label in labels)
    match = re.search(r"(?<![.!?])[.!?]+[\"')\]]*$", sentence)
    if match:
        return f"{sentence[: match.start()]} {marks}{sentence[match.start() :]}"
    return f"{sentence} {marks}."


def _scope(messages):
    scope = ""
    for message in messages:
        found = _SEARCHED_RE.search(_text(message.get("content")))
        if found:
            scope = found.group(1).strip()
    return scope


@dataclass(frozen=True)
class Candidate:
    score: float
    passage: int  # index into the passages
    order: int  # place in its passage
    label: str
    text: str


def rank(question, passages):
    """(every candidate sentence of the passages, best first; all sentences by (passage, order))."""
    wanted = set(terms(question))
    asked = terms(question)
    pairs = {(a, b) for a, b in zip(asked, asked[1:], strict=False)}  # "side business", "same role"
    found = []  # (passage index, order in passage, label, sentence, words)
    contexts, heading_terms = [], []
    for index, (label, body, source) in enumerate(passages):
        headings, parts = passage_parts(body, source)
        headings += [p for p in parts if _is_heading(p)]
        contexts.append(" ".join([source, *headings]).strip())
        heading_terms.append(set(terms(contexts[-1])))
        for order, sentence in enumerate(parts):
            # Headings and questions (an FAQ's) are context for the sentences after them, not answers.
            if not _is_heading(sentence) and not sentence.rstrip().endswith("?"):
                found.append((index, order, label, sentence, set(terms(sentence))))
    by_place = {(c[0], c[1]): c[3] for c in found}
    if not found:
        return [], by_place
    # Rarer question words weigh more (inverse document frequency over sentences).
    total = len(found)
    idf = {t: math.log(1 + total / (1 + sum(1 for c in found if t in c[4]))) for t in wanted}
    best_possible = sum(idf.values()) or 1.0
    passage_terms = [set(terms(body)) | heading_terms[i] for i, (_, body, _) in enumerate(passages)]
    # What each candidate is matched on: its text, and a question it answers ("…? That's fine …") on its own.
    probes = [(position, c[3], c[4]) for position, c in enumerate(found)]
    probes += [
        (position, c[3][: c[3].index("? ") + 1], set(terms(c[3][: c[3].index("? ") + 1])))
        for position, c in enumerate(found)
        if "? " in c[3]
    ]
    vectors = _embed([question, *contexts, *[p[1] for p in probes]])
    kind = _answer_kind(question)
    best = {}
    for number, (position, text, words) in enumerate(probes):
        index, sentence = found[position][0], found[position][3]
        # A word of the sentence's heading counts for most of one in the sentence itself.
        lexical = (
            sum(idf[t] if t in words else HEADING_WORD * idf[t] for t in wanted & (words | heading_terms[index]))
            / best_possible
        )
        around = sum(idf[t] for t in wanted & passage_terms[index]) / best_possible
        meaning = 0.0
        if vectors is not None:
            question_vector = vectors[0]
            sentence_vector = vectors[1 + len(contexts) + number] + CONTEXT_MEANING * vectors[1 + index]
            norm = float((sentence_vector**2).sum()) ** 0.5 or 1.0
            meaning = max(0.0, float(question_vector @ sentence_vector) / norm)
        fits = 1.0 if kind is not None and kind.search(sentence) else 0.0
        rank_ = 1.0 / (1 + index)
        said = terms(text)
        phrase = len(pairs & set(zip(said, said[1:], strict=False))) / len(pairs) if pairs else 0.0
        score = W_MEANING * meaning + W_WORDS * lexical + W_PASSAGE * around + W_KIND * fits + W_RANK * rank_
        score += W_PHRASE * phrase
        if vectors is None:
            score = (W_WORDS * lexical + W_PASSAGE * around) / (W_WORDS + W_PASSAGE) * 0.6
        # A long sentence (a wide table row) shares words with any question: it must earn its length.
        score /= 1 + max(0, len(text.split()) - LONG_SENTENCE) / LONG_SENTENCE
        best[position] = max(best.get(position, 0.0), score)
    scored = [Candidate(best[position], c[0], c[1], c[2], c[3]) for position, c in enumerate(found)]
    scored.sort(key=lambda c: (c.score, -c.passage, -c.order), reverse=True)
    # Overlapping passages repeat sentences: each sentence counts once, where it ranks best.
    seen, unique = set(), []
    for item in scored:
        key = " ".join(item.text.lower().split())
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique, by_place


def answer(messages):
    """The extractive answer text for a list of messages."""
    question, passages = split_question_and_passages(messages)
    scope = _scope(messages)
    if not passages:
        return refusal(scope) if scope else NO_MODEL
    scored, by_place = rank(question, passages)
    judged, threshold, floor, standout = judge(question, scored, passages)
    if not scored or scored[0].score < floor or judged[0].score < threshold:
        return refusal(scope, _nearest(passages, scored))
    contextual, ranked, scored = judged is not scored, scored, judged
    best = scored[0].score
    tied = [item for item in scored[:MAX_QUOTES] if item.score >= best * SECOND_SENTENCE]
    kind = _answer_kind(question)
    # One of them alone holding what the question asks for (the amount of "how long …": "after one week";
    # what may be done for "Can I …": "should not be placed") answers; no tie.
    amounts = [i for i in tied if kind is not None and kind.search(_PRONOUN_ONE.sub("", i.text))]
    scattered = len(tied) == MAX_QUOTES and len({i.passage for i in tied}) > 1 and len(amounts) != 1
    if contextual and scattered and standout < SCATTERED_STANDOUT:
        return refusal(scope, _nearest(passages, scored))  # several half-answers in several passages
    # Another sentence joins when it scores nearly as well and, with the contextual judge (whose scores
    # lie closer together), holds what the question asks for (a number, a date, what is allowed) when
    # the best one does.
    fits = contextual and kind is not None and kind.search(scored[0].text)
    chosen = [
        item
        for item in scored[:MAX_QUOTES]
        if item.score >= best * SECOND_SENTENCE and (not fits or item is scored[0] or kind.search(item.text))
    ]
    picked = {(item.passage, item.order): item for item in chosen}
    top = chosen[0]
    follow = []
    headings = _Headings(passages)
    # A sentence that announces what follows ("Here is how:") brings the next one along; one that
    # lacks what the question asks for (a number, a date, a name) brings the next sentence that has it.
    if top.text.rstrip().endswith(":"):
        follow += [top.order + n for n in range(1, 1 + LIST_AFTER_COLON)]
    elif kind is not None and not kind.search(top.text):
        follow += [o for o in (top.order + 1, top.order + 2) if kind.search(by_place.get((top.passage, o), ""))][:1]
    elif kind is None and len(top.text.split()) < SHORT_ANSWER and len(chosen) == 1 and _ENDS.search(top.text):
        # A short sentence brings the next sentence of its section along: "The "Val" as in the word
        # "value"." says half of how Valgrind is pronounced; the sentence after it says the rest. (Not a
        # list item or a label, which ends without a full stop: the next item is another fact.)
        following = by_place.get((top.passage, top.order + 1), "")
        if (
            following
            and not following.rstrip().endswith("?")
            and headings(top.passage, top.order + 1) == headings(top.passage, top.order)
        ):
            follow.append(top.order + 1)
    # "It helps you use less memory." / "Here you can refund an invoice.": the sentence before says what
    # "it" or "here" is ("Massif is a heap profiler."), when both stand under the same heading.
    if (
        _REFERS_BACK.search(top.text)
        and (top.passage, top.order - 1) in by_place
        and headings(top.passage, top.order - 1) == headings(top.passage, top.order)
    ):
        follow.append(top.order - 1)
    for order in follow:
        if (top.passage, order) in by_place:
            picked.setdefault(
                (top.passage, order), Candidate(0, top.passage, order, top.label, by_place[(top.passage, order)])
            )
    # In the order of the passages, each passage cited once, after its last sentence.
    # The passage of the best sentence first, then the others; within a passage, in reading order.
    first = {}
    for item in chosen:
        first.setdefault(item.passage, len(first))
    ordered = sorted(picked.values(), key=lambda item: (first.get(item.passage, len(first)), item.order))
    if _ASKS_CONTACT.search(question) and not any(_CONTACT.search(item.text) for item in ordered):
        return refusal(scope, _nearest(passages, scored))  # asked for a number or an address: none is here
    if kind in (_NUMBER, _FREQUENCY) and not any(kind.search(i.text) or _NO_LIMIT.search(i.text) for i in ordered):
        return refusal(scope, _nearest(passages, scored))  # "how many / how long / how often": no amount here
    if _ASKS_AMOUNT_NOUN.search(question) and not any(
        _AMOUNT.search(i.text) or _NO_LIMIT.search(i.text) for i in ordered
    ):
        return refusal(scope, _nearest(passages, scored))  # "what is the notice period / the fee": no figure here
    if _ASKS_VERSION.search(question) and not any(_FIGURE.search(_URL_RE.sub(" ", i.text)) for i in ordered):
        return refusal(scope, _nearest(passages, scored))  # "which version / release / port": no figure here
    also = _also_stated(question, top, ranked, passages, {item.passage for item in ordered})
    out = []
    for position, item in enumerate(ordered):
        last_of_passage = position + 1 == len(ordered) or ordered[position + 1].passage != item.passage
        text = " ".join(item.text.split())
        if _no_subject(text):
            heading = headings(item.passage, item.order)
            opens = item.order == 0 or headings(item.passage, item.order - 1) != heading  # first of its section
            if opens and heading and not heading.endswith("?") and _squash(heading) not in _squash(text):
                text = f"{heading}: {text}"  # "django-announce: A (very) low-traffic list …"
        labels = [item.label, *also] if item.passage == top.passage else [item.label]
        out.append(_cite(text, *labels) if last_of_passage else text)
    if _ASKS_WHICH.search(question) and not _specific(" ".join([*out, *_subjects(ordered, headings)]), question):
        return refusal(scope, _nearest(passages, scored))  # "which airline": no name, term or figure here
    if ranked[0].score < COMMON_WORDS_FLOOR and _only_common_words(question, passages, " ".join(out)):
        return refusal(scope, _nearest(passages, scored))  # what it shares with the question, every passage has
    return " ".join(out)


def _no_subject(text):
    """Whether a sentence leaves its subject to its heading ("This list …", "Runs before the package is packed.")."""
    return bool(_NAMES_NO_SUBJECT.search(text) or _OPENS_WITH_VERB.search(text))


def _subjects(items, headings):
    """The headings of those sentences `items` that do not name their subject ("Here you can …" under
    "Queenbee"): the heading names it, each as "in HEADING"."""
    named = (headings(item.passage, item.order) for item in items if _no_subject(item.text))
    return [f"in {heading}" for heading in named if heading]


def _specific(text, question):
    """Whether a sentence holds a name, a term or a figure that the question does not: a capitalised word
    within the sentence, a version, code, a quotation, an identifier (dotted, camel-case, with a digit: "sha256"),
    an option ("-O2", "--prefix"), a label ("High: …"). A bare number ("1:1s") is no name."""
    said = {w.lower() for w in _WORD_RE.findall(question)}
    return any(
        match.group().lower().strip('`"“”‘’-') not in said
        for match in _TERM.finditer(_URL_RE.sub(" ", _CITATION.sub("", text)))
    )


def _only_common_words(question, passages, text):
    """Whether the answer `text` shares with the question only words that every passage holds."""
    if len(passages) < COMMON_MIN_PASSAGES:
        return False
    common = set.intersection(*(set(terms(f"{body} {source}")) for _, body, source in passages))
    shared = set(terms(question)) & set(terms(text))
    return not shared - common


_FIGURE = re.compile(r"\d+(?:[.,:]\d+)*")
_PROPER = re.compile(r"\b[A-Z][\w&'-]+")  # one quantifier: linear on a line of any length


def _key_facts(sentence, question):
    """What a sentence states that the question does not hold: its figures, else its first name."""
    text = _URL_RE.sub(" ", sentence)
    figures = set(_FIGURE.findall(text))
    if figures:
        return figures
    asked = set(terms(question))
    names = [w for w in _PROPER.findall(text) if w.lower() not in STOPWORDS and _stem(w) not in asked]
    return set(names[:1])


def _also_stated(question, top, ranked, passages, cited):
    """Labels of passages of other documents with a sentence that states the answer's fact too: one of
    its figures (or its name) and one of the question's words that the answer holds, in a sentence that
    ranks nearly as well for the question."""
    facts = _key_facts(top.text, question)
    shared = set(terms(question)) & set(terms(top.text))
    if not facts or not shared:
        return []
    best = max((item.score for item in ranked), default=0.0)
    documents = {_document(passages[index]) for index in cited} - {""}
    labels = []
    for item in ranked:
        if item.score < SUPPORT_SHARE * best:
            break
        document = _document(passages[item.passage])
        if item.passage in cited or passages[item.passage][0] in labels or document in documents:
            continue  # another passage of a document already cited adds nothing
        states = set(_FIGURE.findall(item.text)) | set(_PROPER.findall(item.text))
        if facts & states and shared & set(terms(item.text)):
            labels.append(passages[item.passage][0])
            cited = cited | {item.passage}
            documents.add(document)
    return labels


def _document(passage):
    """The title of a passage's document, from its source ("Title, Section"); "" when unknown."""
    source = passage[2]
    return source.split(", ", 1)[0].strip() if source else ""


def judge_texts(scored, passages, headed=True):
    """What the contextual model reads for each of the best candidates: the sentence, under its heading
    when `headed`."""
    headings = _Headings(passages)
    texts = []
    for item in scored[:JUDGE_CANDIDATES]:
        text = " ".join(item.text.split())
        if headed:
            heading = headings(item.passage, item.order).strip()
            if heading and _squash(heading) not in _squash(text):
                text = f"{heading}: {text}"
        texts.append(" ".join(text.split()[:JUDGE_WORDS]))
    return texts


def contextual_scores(question, scored, passages):
    """(cosines of the question and the best candidates under their headings, and of the question and
    the same sentences alone) by the contextual model; None without it."""
    if not CONTEXTUAL or not scored:
        return None
    from llmgateway import contextual

    if not contextual.available():
        return None
    headed, alone = judge_texts(scored, passages), judge_texts(scored, passages, headed=False)
    vectors = contextual.encode([question, *headed, *alone])  # a sentence with no heading is encoded once
    cosines = [float(v) for v in vectors[1:] @ vectors[0]]
    return cosines[: len(headed)], cosines[len(headed) :]


def judge(question, scored, passages):
    """(the candidates re-scored by the contextual model, best first; the threshold that applies to
    their combined score; the floor that applies to the best static score; how far the closest sentence
    stands out from the other candidates).

    Without the model: the candidates as they are, ANSWER_THRESHOLD, ANSWER_THRESHOLD and 0.
    Whether an answer stands out is read on the sentences under their headings (the heading says what
    a sentence is about); a sentence's score gains the better of its two cosines, with or without its
    heading, since a heading shared by the passage's sentences ("Membership: …") draws them all
    towards the question's topic and can hide the one that holds what it asks.
    """
    found = contextual_scores(question, scored, passages)
    if found is None:
        return scored, ANSWER_THRESHOLD, ANSWER_THRESHOLD, 0.0
    headed, alone = found
    ordered = sorted(headed, reverse=True)
    counted = len(ordered) >= STANDOUT_CANDIDATES
    margin = ordered[0] - sum(ordered[1:]) / (len(ordered) - 1) if counted else 0.0
    if counted and margin < STANDOUT:
        return scored, math.inf, ANSWER_THRESHOLD, margin  # nothing stands out: refused
    strong = counted and ordered[0] >= STRONG_COSINE and margin >= STRONG_STANDOUT
    strong = strong or (counted and margin >= STRONG_STANDOUT and _corroborated(scored, headed))
    floor = STRONG_FLOOR if strong else ANSWER_THRESHOLD
    judged = [
        Candidate(item.score + W_CONTEXTUAL * max(a, b), item.passage, item.order, item.label, item.text)
        for item, a, b in zip(scored, headed, alone, strict=False)
    ]
    judged.sort(key=lambda c: (c.score, -c.passage, -c.order), reverse=True)
    return judged + list(scored[len(judged) :]), CONTEXTUAL_THRESHOLD, floor, margin if counted else math.inf


def _corroborated(scored, headed):
    """Whether the closest sentence (by the contextual model, under its heading) is at least
    CORROBORATED_COSINE near the question and another sentence of its passage is as near, within
    CORROBORATED_GAP: the passage says it twice (a rule and its consequence)."""
    best = max(range(len(headed)), key=headed.__getitem__)
    return headed[best] >= CORROBORATED_COSINE and any(
        i != best and scored[i].passage == scored[best].passage and headed[best] - headed[i] <= CORROBORATED_GAP
        for i in range(len(headed))
    )


def _nearest(passages, scored, limit=2):
    """The titles of the documents whose sentences came closest, best first."""
    titles = []
    for item in scored:
        title = _document(passages[item.passage])
        if title and title not in titles:
            titles.append(title)
        if len(titles) == limit:
            break
    return titles


def _unsupported(message, param):
    return ProviderError(message, status=400, code="unsupported_parameter", param=param)


def _cut(text, limit):
    """(text, finish_reason): the answer cut at about `limit` tokens (at a word's end), as a model stops there."""
    if not limit or estimate_tokens(text) <= limit:
        return text, "stop"
    words, kept = re.findall(r"\S+\s*", text), ""
    for word in words:
        if kept and estimate_tokens(kept + word) > limit:
            break
        kept += word
    return kept.rstrip(), "length"


class OfflineProvider(Provider):
    """Answers from the passages in the request (`answer`), without a model: for demos, tests and laptops.

    It honours max_tokens and a JSON object response_format; what it cannot do (call tools when
    told to, follow a JSON schema, give log probabilities) is refused with a 400 naming the field.
    """

    def _usage(self, request, text, choices=1):
        prompt = sum(estimate_tokens(_text(m.get("content"))) + 4 for m in request.get("messages", []))
        completion = estimate_tokens(text) * choices
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _answer(self, request):
        """(text, finish_reason) for the request, or ProviderError(400) for what the offline model cannot do."""
        choice = request.get("tool_choice")
        if request.get("tools") and (choice == "required" or isinstance(choice, dict)):
            raise _unsupported(
                "The offline model does not call tools; use tool_choice 'auto' or 'none'.", "tool_choice"
            )
        form = (request.get("response_format") or {}).get("type")
        if form == "json_schema":
            raise _unsupported("The offline model cannot follow a JSON schema; use json_object.", "response_format")
        if request.get("logprobs"):
            raise _unsupported("The offline model gives no log probabilities.", "logprobs")
        text = answer(request.get("messages") or [])
        limit = request.get("max_completion_tokens") or request.get("max_tokens")
        if form == "json_object":  # the answer as a JSON object, whole: cut inside it, never in its syntax
            return json.dumps({"answer": _cut(text, max(1, limit - 8))[0] if limit else text}), "stop"
        return _cut(text, limit)

    def complete(self, request, deadline=None):
        """The answer; with n above 1, n choices (the answerer is deterministic: the same text in each)."""
        (text, finish), choices = self._answer(request), request.get("n") or 1
        response = response_dict(self.spec.name, text, self._usage(request, text, choices), finish_reason=finish)
        first = response["choices"][0]
        response["choices"] = [{**first, "index": i, "message": dict(first["message"])} for i in range(choices)]
        return response

    def stream(self, request, deadline=None):
        if (request.get("n") or 1) > 1:
            yield from chunks_from_response(self.complete(request, deadline))  # each choice's chunks by index
            return
        text, finish = self._answer(request)
        id_, created, model = completion_id(), int(time.time()), self.spec.name
        yield chunk_dict(id_, created, model, {"role": "assistant", "content": ""})
        words = re.findall(r"\S+\s*", text)
        for start in range(0, len(words), 4):
            yield chunk_dict(id_, created, model, {"content": "".join(words[start : start + 4])})
        yield chunk_dict(id_, created, model, {}, finish_reason=finish)
        yield chunk_dict(id_, created, model, {}, usage=self._usage(request, text), choices=False)
