"""The embedded default: extractive answers from the passages in the messages.

No weights, no network. It finds the question (the last user message, or
the text after "Question:" in it) and the passages supplied with it, scores
every sentence of every passage by the question words it contains (rarer
words count more), and quotes the best few with their labels. It says
plainly when no passage answers the question, and when there are no
passages at all (no generative model is configured).

Passages are recognised in any message as
- `<passage id="3">…</passage>` (or `<document …>` / `<source …>`) blocks, or
- blocks that start with a label in brackets, `[3] …` or `[handbook.pdf p.2] …`,
  running until a blank line or the next label, or
- the content of `tool` messages.
Token counts are local estimates (about four characters a token).
"""

import math
import re
import time

from llmgateway.providers.base import Provider, chunk_dict, completion_id, response_dict

NO_MODEL = (
    "No generative model is configured, and no passages were supplied to answer from. "
    "The offline model can only quote from passages given with the question."
)
NO_ANSWER = "None of the supplied passages answers this question."
MAX_QUOTES = 3

_TAG_RE = re.compile(r"<(passage|document|source)\b([^>]*)>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_ID_RE = re.compile(r"""\b(?:id|name|title|source)\s*=\s*["']([^"']{1,80})["']""", re.IGNORECASE)
_LABEL_RE = re.compile(r"^\s*\[([^\[\]\n]{1,80})\]\s*(.*)$")
_QUESTION_RE = re.compile(r"(?:^|\n)\s*(?:question|q)\s*:\s*(.+)", re.IGNORECASE | re.DOTALL)
# Sentence ends; blank lines; list items; and a line that starts with a capital (a heading,
# a table or CSV row) — but not a line a PDF wrapped mid-sentence, which goes on in lower case.
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\n{2,}|\n(?=\s*[-*•]\s)|\n(?=[A-Z])")
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
    word = word.lower().strip("'-")
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
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
    """(question, [(label, passage text)]) from OpenAI-style messages."""
    question = ""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    passages = []
    for index, message in enumerate(messages):
        text = _text(message.get("content"))
        if message.get("role") == "tool":
            passages.append((message.get("name") or message.get("tool_call_id") or str(len(passages) + 1), text))
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
            passages.append((found.group(1) if found else str(len(passages) + 1), tag.group(3).strip()))
        passages.extend(_labelled_blocks(_TAG_RE.sub("", text)))
    return question, [(label, body) for label, body in passages if body.strip()]


def sentences(text):
    return [s.strip(" \n\t-*•") for s in _SENTENCE_RE.split(text) if s and len(s.strip()) > 2]


def answer(messages):
    """The extractive answer text for a list of messages."""
    question, passages = split_question_and_passages(messages)
    if not passages:
        return NO_MODEL
    wanted = set(terms(question))
    if not wanted:
        return NO_ANSWER
    candidates = [(label, s, set(terms(s))) for label, body in passages for s in sentences(body)]
    if not candidates:
        return NO_ANSWER
    # What each passage as a whole covers of the question: a sentence from a passage about
    # everything asked ("set up the VPN ... BW-Connect") beats one that shares a single word.
    passage_terms = {}
    for label, body in passages:
        passage_terms.setdefault(label, set()).update(terms(body))
    # Rarer question words weigh more (inverse document frequency over sentences).
    total = len(candidates)
    idf = {t: math.log(1 + total / (1 + sum(1 for _, _, words in candidates if t in words))) for t in wanted}
    best_possible = sum(idf.values())
    scored = []
    for order, (label, sentence, words) in enumerate(candidates):
        matched = wanted & words
        if not matched:
            continue
        score = sum(idf[t] for t in matched) / best_possible
        context = sum(idf[t] for t in wanted & passage_terms[label]) / best_possible
        scored.append((score + 0.5 * context, -order, label, sentence, score))
    # A sentence must cover a fair share of what the question asks about.
    threshold = 0.34 if len(wanted) > 1 else 0.99
    scored = [item[:4] for item in scored if item[4] >= threshold]
    if not scored:
        return NO_ANSWER
    scored.sort(reverse=True)
    top = sorted(scored[:MAX_QUOTES], key=lambda item: -item[1])  # back in passage order
    # Line breaks inside a quoted sentence come from the document's layout (PDF lines), not its meaning.
    quotes = [f'"{" ".join(sentence.split())}" [{label}]' for _, _, label, sentence in top]
    return "According to the supplied passages:\n\n" + "\n\n".join(quotes)


class OfflineProvider(Provider):
    def _usage(self, request, text):
        prompt = sum(estimate_tokens(_text(m.get("content"))) + 4 for m in request.get("messages", []))
        completion = estimate_tokens(text)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def complete(self, request, deadline=None):
        text = answer(request.get("messages") or [])
        return response_dict(self.spec.name, text, self._usage(request, text))

    def stream(self, request, deadline=None):
        text = answer(request.get("messages") or [])
        id_, created, model = completion_id(), int(time.time()), self.spec.name
        yield chunk_dict(id_, created, model, {"role": "assistant", "content": ""})
        words = re.findall(r"\S+\s*", text)
        for start in range(0, len(words), 4):
            yield chunk_dict(id_, created, model, {"content": "".join(words[start : start + 4])})
        yield chunk_dict(id_, created, model, {}, finish_reason="stop")
        yield chunk_dict(id_, created, model, {}, usage=self._usage(request, text), choices=False)
