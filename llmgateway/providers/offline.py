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
    return [s.strip(" \n\t-*•") for s in _SENTENCE_RE.split(text) if s and len(s.strip()) > 2]


# Question kinds and what a sentence that answers them holds (language patterns, not topics).
_ASKS_NUMBER = re.compile(
    r"\bhow (many|much|long|often|old|far|big|large|soon|frequently)\b|\bwhat (percentage|percent|share|portion|"
    r"part|proportion|amount|number|fraction|rate)\b|\bhow \w+ (days|weeks|months|years|hours)\b",
    re.IGNORECASE,
)
_ASKS_TIME = re.compile(r"\bwhen\b|\bwhat (time|date|day)\b|\bwhich (day|date|month|year)\b|\bdeadline\b", re.I)
_ASKS_NAME = re.compile(r"\bwho(m|se)?\b|\bwhich (company|person|team|provider|vendor|tool|service|app)\b", re.I)
_ASKS_PLACE = re.compile(r"\bwhere\b", re.IGNORECASE)
_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|"
    r"once|twice|half|double|percent|dozen)\b",
    re.IGNORECASE,
)
_TIME = re.compile(
    r"\d|\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|july|"
    r"august|september|october|november|december|daily|weekly|monthly|yearly|annually|every|after|before|until|"
    r"during|end of|start of|beginning|first|last|each|week|month|year|day|morning|afternoon|evening)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<=\w[ ,(])[A-Z][\w&'-]+|@|\b[A-Z]{2,}\b")
_PLACE = re.compile(r"(?<=\w[ ,(])[A-Z][\w'-]+|https?://|\b\d+\b|\b(floor|room|office|street|building|portal|site)\b")
_SEARCHED_RE = re.compile(r"^\s*searched\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_SOURCE_RE = re.compile(r"""\bsource\s*=\s*["']([^"']{1,300})["']""", re.IGNORECASE)

# Weights of a sentence's score, and the least score that counts as an answer. The threshold is
# set from questions the documents cannot answer (bench/answer_quality.py): below it, the
# answerer says it found nothing rather than quote the nearest sentence.
W_MEANING, W_WORDS, W_PASSAGE, W_KIND, W_RANK = 0.5, 0.3, 0.12, 0.1, 0.04
ANSWER_THRESHOLD = 0.38
SECOND_SENTENCE = 0.9  # another sentence joins the answer when it scores this share of the best
MIN_WORDS = 4


def refusal(scope=""):
    return f"I couldn't find this in {scope or 'the documents I searched'}."


def _question_kind(question):
    for pattern, kind in ((_ASKS_NUMBER, _NUMBER), (_ASKS_TIME, _TIME), (_ASKS_NAME, _NAME), (_ASKS_PLACE, _PLACE)):
        if pattern.search(question):
            return kind
    return None


def _is_heading(sentence):
    """A short line with no sentence end and no figure: a heading or label, context rather than an answer."""
    words = sentence.split()
    return (
        len(words) < MIN_WORDS
        and not re.search(r"\d", sentence)
        or (len(words) < 12 and not re.search(r"[.!?:;)]$", sentence) and sentence.istitle())
    )


def _embed(texts):
    """Unit vectors of the texts from the local embedding model; None when it cannot load."""
    try:
        from llmgateway.embeddings import embed_locally

        return embed_locally(texts)
    except Exception:  # noqa: BLE001 - the answerer still works from the words alone
        return None


def _cite(sentence, label):
    sentence = " ".join(sentence.split())
    match = re.search(r"[.!?]+[\"')\]]*$", sentence)
    if match:
        return f"{sentence[: match.start()]} [{label}]{sentence[match.start() :]}"
    return f"{sentence} [{label}]."


def answer(messages):
    """The extractive answer text for a list of messages."""
    question, passages = split_question_and_passages(messages)
    scope = ""
    for message in messages:
        found = _SEARCHED_RE.search(_text(message.get("content")))
        if found:
            scope = found.group(1)
    if not passages:
        return refusal(scope) if scope else NO_MODEL
    wanted = set(terms(question))
    # Candidate sentences, each with its passage's heading context.
    candidates = []  # (passage index, order in passage, label, sentence, words)
    contexts = []
    for index, (label, body, source) in enumerate(passages):
        parts = sentences(body)
        headings = [p for p in parts if _is_heading(p)]
        contexts.append(" ".join([source, *headings]).strip())
        for order, sentence in enumerate(parts):
            # Headings and questions (an FAQ's) are context for the sentences after them, not answers.
            if not _is_heading(sentence) and not sentence.rstrip().endswith("?"):
                candidates.append((index, order, label, sentence, set(terms(sentence))))
    if not candidates:
        return refusal(scope)
    # Rarer question words weigh more (inverse document frequency over sentences).
    total = len(candidates)
    idf = {t: math.log(1 + total / (1 + sum(1 for c in candidates if t in c[4]))) for t in wanted}
    best_possible = sum(idf.values()) or 1.0
    passage_terms = [set(terms(body + " " + contexts[i])) for i, (_, body, _) in enumerate(passages)]
    vectors = _embed([question, *contexts, *[c[3] for c in candidates]])
    kind = _question_kind(question)
    scored = []
    for position, (index, order, label, sentence, words) in enumerate(candidates):
        lexical = sum(idf[t] for t in wanted & words) / best_possible
        around = sum(idf[t] for t in wanted & passage_terms[index]) / best_possible
        meaning = 0.0
        if vectors is not None:
            question_vector = vectors[0]
            sentence_vector = vectors[1 + len(contexts) + position] + 0.5 * vectors[1 + index]
            norm = float((sentence_vector**2).sum()) ** 0.5 or 1.0
            meaning = max(0.0, float(question_vector @ sentence_vector) / norm)
        fits = 1.0 if kind is not None and kind.search(sentence) else 0.0
        rank = 1.0 / (1 + index)
        score = W_MEANING * meaning + W_WORDS * lexical + W_PASSAGE * around + W_KIND * fits + W_RANK * rank
        if vectors is None:
            score = (W_WORDS * lexical + W_PASSAGE * around) / (W_WORDS + W_PASSAGE) * 0.6
        scored.append((score, -index, -order, index, order, label, sentence))

    scored.sort(reverse=True)
    # Overlapping passages repeat sentences: each sentence counts once, where it ranks best.
    seen, unique = set(), []
    for item in scored:
        key = " ".join(item[6].lower().split())
        if key not in seen:
            seen.add(key)
            unique.append(item)
    scored = unique
    best = scored[0][0]
    if best < ANSWER_THRESHOLD:
        return refusal(scope)
    chosen = [item for item in scored[:MAX_QUOTES] if item[0] >= best * SECOND_SENTENCE]
    by_place = {(c[0], c[1]): c[3] for c in candidates}
    picked = {(item[3], item[4]): item for item in chosen}
    top = chosen[0]
    follow = []
    # A sentence that announces what follows ("Here is how:") brings the next one along; one that
    # lacks what the question asks for (a number, a date, a name) brings the next sentence that has it.
    if top[6].rstrip().endswith(":"):
        follow.append(top[4] + 1)
    elif kind is not None and not kind.search(top[6]):
        follow += [o for o in (top[4] + 1, top[4] + 2) if kind.search(by_place.get((top[3], o), ""))][:1]
    for order in follow:
        if (top[3], order) in by_place:
            picked.setdefault((top[3], order), (0, 0, 0, top[3], order, top[5], by_place[(top[3], order)]))
    # In the order of the passages, each passage cited once, after its last sentence.
    ordered = sorted(picked.values(), key=lambda item: (item[3], item[4]))
    out = []
    for position, item in enumerate(ordered):
        last_of_passage = position + 1 == len(ordered) or ordered[position + 1][3] != item[3]
        text = " ".join(item[6].split())
        out.append(_cite(text, item[5]) if last_of_passage else text)
    return " ".join(out)


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
