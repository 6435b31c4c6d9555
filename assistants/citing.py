"""Citations in an answer: [n] markers as links, and the cited passage with what the answer quoted marked.

link_markers(html, links)                # "[2]" in the answer's text → <a class="cite" href=…>[2]</a>
quoted_parts(answer, n)                  # what the answer says with [n]: the candidates to mark
mark_passage(text, quotes, fallback)     # the passage as safe HTML, the quoted parts in <mark>
"""

import re

from django.utils.html import escape
from django.utils.safestring import mark_safe

_MARKER = re.compile(r"\[(\d{1,2})\]")
_TAG = re.compile(r"(<[^>]*>)")
_MARK = re.compile(r"<mark>(.*?)</mark>", re.S)
_HTML_TAG = re.compile(r"<[^>]+>")
# "a quotation" [n]   (possibly with other markers between: "…" [1][2])
_QUOTED = re.compile(r"[\"“]([^\"”]{12,}?)[\"”]\s*((?:\[\d{1,2}\]\s*)+)")
# A run of markers, "[1]" or "[1][2]", and where one sentence ends and the next begins.
_MARKERS_RUN = re.compile(r"(?:\s*\[\d{1,2}\])+")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def link_markers(html, links):
    """Turn "[n]" in the text of sanitized HTML into links to passage n; `links` is {n: url}.

    Only text between tags changes (never an attribute), and never inside a link or code.
    """
    if not links:
        return html
    out, skip = [], 0
    for part in _TAG.split(str(html)):
        if part.startswith("<"):
            name = part[1:].split(None, 1)[0].rstrip(">").lower() if len(part) > 2 else ""
            if name in ("a", "code", "pre"):
                skip += 1
            elif name in ("/a", "/code", "/pre"):
                skip = max(0, skip - 1)
            out.append(part)
        elif skip:
            out.append(part)
        else:
            out.append(_MARKER.sub(lambda m: _link(m, links), part))
    return mark_safe("".join(out))  # noqa: S308 - only escaped numbers and known URLs are added


def _link(match, links):
    n = int(match.group(1))
    url = links.get(n)
    if url is None:
        return match.group(0)
    return (
        f'<a class="cite" href="{escape(url)}" data-cite="{n}" target="_blank" rel="noopener" '
        f'aria-label="Source {n}">[{n}]</a>'
    )


def quoted_parts(answer, n):
    """The stretches of the answer that cite passage n: quotes before [n], else the sentence before it."""
    parts = []
    for match in _QUOTED.finditer(answer):
        if n in {int(x) for x in _MARKER.findall(match.group(2))}:
            parts.append(match.group(1))
    if parts:
        return parts
    # Plain sentences: everything since the previous marker cites n (an answer cites a passage once,
    # after the last of the sentences it took from it).
    previous = 0
    for match in _MARKERS_RUN.finditer(answer):
        if n in {int(x) for x in _MARKER.findall(match.group(0))}:
            for sentence in _SENTENCE_SPLIT.split(answer[previous : match.start()]):
                sentence = sentence.strip(' ,;:-*_"“”\n')
                if len(sentence) >= 12:
                    parts.append(sentence)
        previous = match.end()
    return parts


def _pattern(quote):
    words = re.findall(r"\w+|[^\w\s]", quote)
    if not words:
        return None
    return re.compile(r"\s*".join(re.escape(w) for w in words), re.I)


def mark_passage(text, quotes, snippet=""):
    """The passage as safe HTML with each quoted part in <mark>; else the words the search marked in its snippet."""
    spans = []
    for quote in quotes:
        pattern = _pattern(quote.strip().rstrip("."))
        match = pattern and pattern.search(text)
        if match:
            spans.append(match.span())
    if not spans:
        words = {_HTML_TAG.sub("", w).strip().lower() for w in _MARK.findall(snippet or "")}
        words = {w for w in words if len(w) > 1}
        if words:
            pattern = re.compile(
                r"\b(" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b", re.I
            )
            spans = [m.span() for m in pattern.finditer(text)]
    spans = _merge(sorted(spans))
    out, at = [], 0
    for start, end in spans:
        out.append(escape(text[at:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        at = end
    out.append(escape(text[at:]))
    return mark_safe("".join(out)), bool(spans)  # noqa: S308 - every piece escaped above


def _merge(spans):
    merged = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
