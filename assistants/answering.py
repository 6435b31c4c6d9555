"""Answering a question: retrieve passages, build the prompt, ask the gateway, keep the answer.

    turn = start_turn(assistant, conversation, user, question)   # validates, saves the question
    for event, data in turn.events():                            # ("delta", text) … ("done", message)
        ...

`start_turn` raises `AnswerError` (with the field at fault) for bad input:
an empty or over-long question, an archived assistant, a model that no
longer exists. Events:

- ("meta", {"question_id", "answer_id", "cache_hit", "conversation_id"})
- ("delta", text) — the answer as it is produced
- ("done", Message) — the stored answer, with citations and usage
- ("error", message) — the upstream failed; the partial answer is kept and
  marked interrupted (the message says so), and the conversation stays
  usable. `turn.failure` then holds the AnswerError with the status and
  Retry-After to answer. A failure before any text, like a request the
  gateway refused (a limit, an archived workspace: a 4xx), leaves no
  answer; the question stays.

If the consumer stops early (the page's stop button closes the stream),
the partial answer is saved as interrupted; stopped before any text, the
question stays without an answer.

Saving the answer at the end outlives a database that stops answering: the
save is tried again for up to SAVE_RETRY_SECONDS; if the database still does
not take it, the stream ends with an ("error", …) of its own (a 503 with
Retry-After, the words of corporate.views.DATABASE_UNAVAILABLE_MESSAGE) and
one warning in the log. The page keeps the words it showed; the row, left
"streaming", is marked interrupted once it is older than the longest an
answer may take (`interrupt_stale_answers`, run by the task worker and
whenever a conversation is read).

Query count per turn is constant, whatever the conversation's length:
history is one query of the last few messages, retrieval one search plus
one query for the documents, and the writes are fixed.
"""

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from assistants import prompting, reranking
from assistants.models import (
    MAX_QUESTION_CHARS,
    Assistant,
    Conversation,
    Message,
    MessageStatus,
    Role,
)
from corporate.middleware import is_database_unavailable
from corporate.views import DATABASE_RETRY_AFTER, DATABASE_UNAVAILABLE_MESSAGE
from documents.search import search_workspace
from llmgateway import gateway

log = logging.getLogger(__name__)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]+")
_CITED = re.compile(r"\[(\d{1,2})\]")
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "get",
        "got",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "please",
        "should",
        "so",
        "some",
        "tell",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


class AnswerError(Exception):
    def __init__(self, message, field="content", status=400, retry_after=None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status
        self.retry_after = retry_after  # seconds, for a Retry-After header

    @classmethod
    def from_gateway(cls, exc, partial=False):
        """The gateway's refusal keeps its 4xx (a limit's 429 with its wait); an upstream failure is a 502 (503, 504).

        `partial`: part of the answer came before the failure (and is kept).
        """
        if exc.code == "model_not_found":
            # As check_assistant says it: the conversation is there, the assistant's model is not.
            return cls(_readable(exc), field="model", status=409)
        status = exc.status if 400 <= exc.status < 500 or exc.status in (503, 504) else 502
        return cls(_readable(exc, partial), field=None, status=status, retry_after=exc.retry_after)

    @property
    def refused(self):
        """The gateway refused the request before any model was asked (nothing failed upstream)."""
        return 400 <= self.status < 500


def retrieval_query(question):
    """Any of the question's meaningful words, in web-search syntax (ranking does the rest)."""
    words = []
    for word in _WORD.findall(question.lower()):
        word = word.strip("'-")
        if word not in STOPWORDS and len(word) > 1 and word not in words:
            words.append(word)
    return " or ".join(words[:24])


def document_ids(assistant):
    """None for all of the workspace's documents, else the chosen ones (of its own workspace only)."""
    if assistant.all_documents:
        return None
    return list(assistant.documents.filter(workspace_id=assistant.workspace_id).values_list("pk", flat=True))


def question_vector(question, assistant=None, user=None):
    """(vector, model) of the question for search by meaning, or (None, "") where there is none.

    A gateway call of the assistant's workspace: cached and metered ("retrieval").
    """
    from documents import vectors
    from llmgateway.embeddings import EmbeddingError, embed, embed_for

    if not vectors.state().available:
        return None, ""
    try:
        if assistant is None:
            embedded = embed([question])
        else:
            # Not the assistant's: its usage counts answers, and this is the search before one.
            embedded = embed_for(
                assistant.workspace_id, [question], origin="retrieval", user_id=getattr(user, "pk", None)
            )
    except EmbeddingError as exc:  # the question is still answered, from the words it shares
        log.warning("question embedding failed: %s", exc.message)
        return None, ""
    return embedded.vectors[0], embedded.model


def retrieve(assistant, question, ids=..., user=None):
    if ids is ...:
        ids = document_ids(assistant)
    if ids == []:
        return []
    vector, model = question_vector(question, assistant, user)
    results = search_workspace(
        assistant.workspace_id,
        retrieval_query(question),
        document_ids=ids,
        limit=assistant.passages,
        vector=vector,
        vector_model=model,
        candidates=assistant.passages * reranking.CANDIDATES_PER_PASSAGE,
    )
    return reranking.promote(question, results, assistant.passages, assistant.workspace_id)


def location_of(result):
    """Where in the document the passage is: its heading path or page, unless it only repeats the title."""
    location = (result.location or "").strip()
    return "" if location.casefold() == (result.document.title or "").strip().casefold() else location


def _citation(number, result):
    return {
        "n": number,
        "document_id": result.document.pk,
        "title": result.document.title,
        "location": location_of(result),
        "page": result.page,
        "chunk_id": result.chunk_id,
        "snippet": str(result.snippet),
        "score": round(float(result.score), 4),
        "version": result.document.content_version,
        "url": result.url,
    }


def distinct_passages(results):
    """Each passage once: the same passage found twice (or the same text in two copies) keeps its best place."""
    seen, kept = set(), []
    for result in results:
        text = " ".join(result.text.split()).lower()
        if result.chunk_id in seen or text in seen:
            continue
        seen.update((result.chunk_id, text))
        kept.append(result)
    return kept


def build_request(assistant, question, results, history=()):
    """The gateway request for a question and its retrieved passages, and the citations they may become."""
    results = distinct_passages(results)
    passages = [
        prompting.Passage(i, r.document.pk, r.document.title, location_of(r), r.text)
        for i, r in enumerate(results, start=1)
    ]
    request = {
        "messages": prompting.build_messages(assistant, question, passages, history),
        "temperature": assistant.temperature,
        "max_tokens": assistant.max_tokens,
    }
    if assistant.model_name:
        request["model"] = assistant.model_name
    return request, [_citation(i, r) for i, r in enumerate(results, start=1)]


def _versions(citations):
    """The quoted documents and their content versions: part of the cache key."""
    return sorted({(c["document_id"], c["version"]) for c in citations})


def cited(answer, citations):
    """The citations the answer refers to by [n]; all of them if it names none."""
    numbers = {int(n) for n in _CITED.findall(answer)}
    chosen, seen = [], set()
    for c in citations:
        if c["n"] in numbers and c["chunk_id"] not in seen:
            seen.add(c["chunk_id"])
            chosen.append(c)
    return chosen or ([] if not numbers and _says_no_answer(answer) else citations)


def _says_no_answer(answer):
    lowered = answer.lower()
    return (
        "does not answer" in lowered
        or "do not answer" in lowered
        or "no passage" in lowered
        or "none of the" in lowered
        or "couldn't find" in lowered
        or "could not find" in lowered
    )


# A finished answer whose save the database does not take is saved again for this long (what a client is asked
# to wait while the database does not answer), after pauses of 0.5 s, then twice as long each time.
SAVE_RETRY_SECONDS = DATABASE_RETRY_AFTER
FIRST_SAVE_RETRY_DELAY = 0.5
ANSWER_NOT_SAVED_MESSAGE = f"The answer could not be saved. {DATABASE_UNAVAILABLE_MESSAGE}"


def _drop_broken_connection():
    """Close the connection a database error left broken, so the next try connects afresh.

    Inside a transaction (a test's) closing would end it: then the next try reuses the connection.
    """
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        return
    try:
        connection.close()
    except Exception:  # closing a connection the server already dropped
        pass


@dataclass
class Turn:
    assistant: Assistant
    conversation: Conversation
    user: object
    question: Message
    answer: Message
    request: dict
    cache_extra: dict
    citations: list
    regenerate: bool = False
    # Regenerating: the version that was current before; shown again if the new one yields nothing.
    replaced: int | None = None
    timings: dict = field(default_factory=dict)
    # Set when the gateway refused or failed, or the answer could not be saved: an AnswerError with the status
    # (and Retry-After) to answer with.
    failure: AnswerError | None = None
    # False when the database did not take the answer (it stays "streaming" until it is marked interrupted).
    saved: bool = True

    def events(self):
        started = time.perf_counter()
        parts = []
        control = {"no-cache": True} if self.regenerate else None
        status, error = MessageStatus.INTERRUPTED, ""
        stream = None
        try:
            stream = gateway.stream(
                self.assistant.workspace_id,
                self.request,
                cache_control=control,
                cache_extra=self.cache_extra,
                user=self.user,
                assistant=self.assistant.pk,
                origin="chat",
            )
            yield (
                "meta",
                {
                    "conversation_id": self.conversation.pk,
                    "question_id": self.question.pk,
                    "answer_id": self.answer.pk,
                    "cache_hit": stream.cache_hit,
                },
            )
            for chunk in stream:
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        if not parts:
                            self.timings["first_token_ms"] = (time.perf_counter() - started) * 1000
                        parts.append(text)
                        yield "delta", text
            result = stream.result
            status = MessageStatus.COMPLETE
        except gateway.GatewayError as exc:
            result = None
            self.failure = AnswerError.from_gateway(exc, partial=bool(parts))
            # Stored with a partial answer: a reload and the API say what the page said.
            error = self.failure.message
        finally:
            # Also runs when the consumer stops early: the partial answer is kept, the upstream hung up on.
            if stream is not None:
                stream.close()
            self.timings["gateway_ms"] = (time.perf_counter() - started) * 1000
            saved = time.perf_counter()
            self._save_or_report("".join(parts), status, error, result if status == MessageStatus.COMPLETE else None)
            self.timings["save_ms"] = (time.perf_counter() - saved) * 1000
        if self.failure is not None:
            # After the save: what the event says (the upstream failed, or the answer could not be kept) is so.
            yield "error", self.failure.message
        elif status == MessageStatus.COMPLETE:
            yield "done", self.answer

    def run(self):
        """Consume the whole answer; returns the stored Message (for the API and commands)."""
        for _event, _data in self.events():
            pass
        if self.failure is not None and (not self.answer.content or not self.saved):
            raise self.failure
        return self.answer

    def _save_or_report(self, text, status, error, result):
        """Save the answer, again and again for up to SAVE_RETRY_SECONDS while the database does not answer.

        If it still does not, `saved` is False, one warning is logged and `failure` says so (a 503 with
        Retry-After), unless nothing was lost: no words came and the failure already says why. The row stays
        "streaming" until `interrupt_stale_answers` marks it interrupted. Any other error is raised.
        """
        deadline, pause = None, FIRST_SAVE_RETRY_DELAY
        while True:
            try:
                self._save(text, status, error, result)
                return
            except Exception as exc:
                if not is_database_unavailable(exc):
                    raise
                # From the first failure: that try may itself have waited a query's timeout (DB_QUERY_TIMEOUT).
                deadline = deadline or time.monotonic() + SAVE_RETRY_SECONDS
                if time.monotonic() + pause > deadline:
                    failed = exc
                    break
            _drop_broken_connection()
            time.sleep(pause)
            pause *= 2
        self.saved = False
        first_line = str(failed).strip().splitlines()[0] if str(failed).strip() else ""
        log.warning(
            "answer %s (%d characters) not saved: the database does not answer (%s: %s)",
            self.answer.pk,
            len(text),
            failed.__class__.__name__,
            first_line,
        )
        if self.failure is None or text:
            self.failure = AnswerError(
                ANSWER_NOT_SAVED_MESSAGE, field=None, status=503, retry_after=DATABASE_RETRY_AFTER
            )

    def _save(self, text, status, error, result):
        answer = self.answer
        if status != MessageStatus.COMPLETE and not text:
            # Nothing came: a refused request (a limit, say), an upstream that failed or a consumer that stopped
            # before any text. No answer to keep: the question stays, and a regeneration shows the earlier
            # version again.
            with transaction.atomic():
                Message.objects.filter(pk=answer.pk).delete()
                if self.replaced is not None:
                    Message.objects.filter(pk=self.replaced).update(current=True)
            answer.status, answer.error = status, error[:500]
            return
        answer.content = text
        answer.status = status
        answer.error = error[:500]
        answer.citations = cited(text, self.citations) if status == MessageStatus.COMPLETE else []
        if result is not None:
            usage = result.usage or {}
            answer.prompt_tokens = usage.get("prompt_tokens") or 0
            answer.completion_tokens = usage.get("completion_tokens") or 0
            answer.cost = result.cost or 0
            answer.cache_hit = result.cache_hit
            answer.model_name = result.model
        answer.latency_ms = int(self.timings.get("gateway_ms", 0))
        answer.save(
            update_fields=[
                "content",
                "status",
                "error",
                "citations",
                "prompt_tokens",
                "completion_tokens",
                "cost",
                "cache_hit",
                "model_name",
                "latency_ms",
            ]
        )


INTERRUPTED_ERROR = (
    "The answer was cut off before it was complete: the server stopped while writing it. Regenerate it to try again."
)
# Seconds to spare past the longest an answer may take before one still "streaming" counts as cut off.
STALE_MARGIN_SECONDS = 60


def longest_answer_seconds(model_name=""):
    """How long after it began an answer is over for certain, however it ended.

    Its model's deadline (the model's own, else LLM_DEADLINE_SECONDS: every retry and fallback included), then
    its save (a query's timeout, DB_QUERY_TIMEOUT, and SAVE_RETRY_SECONDS of retries), and STALE_MARGIN_SECONDS.
    """
    from llmgateway import registry

    spec = registry.get_spec(model_name or None)
    deadline = (spec.deadline_seconds if spec is not None else None) or settings.LLM_DEADLINE_SECONDS
    return deadline + settings.DB_QUERY_TIMEOUT + SAVE_RETRY_SECONDS + STALE_MARGIN_SECONDS


def interrupt_if_stale(messages, now=None):
    """Mark interrupted the answers among `messages` still "streaming" past the longest they may take.

    Such an answer was cut off: the web worker writing it died (killed, restarted), or the database did
    not take its save. For a conversation as it is read (the page, the API): no query unless one of them
    is stale, then one UPDATE for all, which leaves alone an answer saved meanwhile. The messages are
    changed in place; returns the ones marked.
    """
    now = now or timezone.now()
    stale = [
        m
        for m in messages
        if m.status == MessageStatus.STREAMING
        and m.role == Role.ASSISTANT
        and m.created_at < now - timedelta(seconds=longest_answer_seconds(m.model_name))
    ]
    if stale:
        Message.objects.filter(pk__in=[m.pk for m in stale], status=MessageStatus.STREAMING).update(
            status=MessageStatus.INTERRUPTED, error=INTERRUPTED_ERROR
        )
        for message in stale:
            message.status, message.error = MessageStatus.INTERRUPTED, INTERRUPTED_ERROR
    return stale


def interrupt_stale_answers(now=None):
    """Mark interrupted every answer of any conversation left "streaming" too long (the task worker's sweep).

    Two queries: the answers still streaming (a partial index keeps them few and quick to find), and one
    UPDATE when some are stale. Returns how many were marked.
    """
    streaming = Message.objects.filter(status=MessageStatus.STREAMING).only(
        "pk", "role", "status", "model_name", "created_at"
    )
    return len(interrupt_if_stale(list(streaming), now))


def _readable(exc, partial=False):
    if exc.code == "model_not_found":
        return "The model this assistant uses is no longer available. Ask a workspace member to choose another."
    if exc.status == 429 and getattr(exc, "limit", None) is not None:
        return exc.limit.plain()  # a limit of this workspace, this person or key: what and until when
    if exc.status == 429:
        return "The model is busy right now (rate limited). Try again in a moment."
    if exc.status in (502, 503, 504) and partial:
        return (
            "The model stopped before the answer was complete (upstream error). The partial answer was kept; try again."
        )
    if exc.status in (502, 503, 504):
        return "The model did not answer (upstream error), so the answer could not be produced. Try again."
    return exc.message


def validate_question(text):
    text = (text or "").strip()
    if not text:
        raise AnswerError("Ask a question: the message is empty.")
    if "\x00" in text:
        raise AnswerError("The question contains a NUL character, which cannot be stored. Remove it and ask again.")
    if len(text) > MAX_QUESTION_CHARS:
        raise AnswerError(f"The question is too long: {len(text)} characters; the limit is {MAX_QUESTION_CHARS}.")
    return text


def check_assistant(assistant):
    if assistant.archived:
        raise AnswerError("This assistant is archived and no longer answers.", field=None, status=409)
    from llmgateway import registry

    name = assistant.model_name or settings.LLM_DEFAULT_MODEL
    spec = registry.get_spec(assistant.model_name or None)
    if spec is None:
        raise AnswerError(
            f"The model “{name}” configured for this assistant is no longer available. "
            "Ask a workspace member to choose another model.",
            field="model",
            status=409,
        )
    if spec.kind == "embedding":
        raise AnswerError(
            f"The model “{name}” configured for this assistant is an embedding model: it searches documents "
            "but cannot write answers. Ask a workspace member to choose a chat model.",
            field="model",
            status=409,
        )


def _history(conversation, question, before=None):
    """The last turns of the conversation as it reads (current answers only), as (role, content), in one query.

    `before`: a question being answered again; only what came before it counts.
    An earlier asking of the very same question (and its answer) is left
    out: repeating a question asks for the same answer, so it is served from
    the cache instead of becoming new context.
    """
    qs = conversation.messages.exclude(content="").filter(Q(role=Role.USER) | Q(current=True))
    position = Coalesce("question_id", "id")
    if before is not None:
        qs = qs.alias(position=position).filter(position__lt=before.pk)
    rows = list(
        reversed(
            qs.order_by(position.desc(), "-pk").values_list("role", "content", "status")[
                : prompting.MAX_HISTORY_MESSAGES
            ]
        )
    )
    turns, skip_answer = [], False
    for role, content, status in rows:
        if role == Role.USER:
            skip_answer = content == question
            if not skip_answer:
                turns.append((role, content))
        elif not skip_answer and status == MessageStatus.COMPLETE:
            turns.append((role, content))
    return turns


def _question_to_redo(conversation, answer):
    """The question whose answer is regenerated: the chosen answer's, or else the latest."""
    if answer is not None:
        question = answer.question
        if question is None or question.conversation_id != conversation.pk:
            raise AnswerError("This answer has no question to answer again.", field="answer")
        return question
    question = conversation.messages.filter(role=Role.USER).order_by("-pk").first()
    if question is None:
        raise AnswerError("There is no question to answer again yet.")
    return question


def start_turn(assistant, conversation, user, text, *, regenerate=False, answer=None):
    """Validate, save the question (or reuse it to regenerate), retrieve and build the request.

    Regenerating (`regenerate=True`, optionally with the `answer` to redo,
    else the latest question's) answers that answer's question again with
    the history before it, as a new version that becomes the current one;
    the earlier versions are kept.
    """
    check_assistant(assistant)
    timings = {}
    if regenerate or answer is not None:
        regenerate = True
        question = _question_to_redo(conversation, answer)
        text = question.content
    else:
        text = validate_question(text)
    history = _history(conversation, text, before=question if regenerate else None)

    began = time.perf_counter()
    results = retrieve(assistant, text, user=user)
    timings["retrieval_ms"] = (time.perf_counter() - began) * 1000

    began = time.perf_counter()
    request, citations = build_request(assistant, text, results, history)
    messages = request["messages"]
    cache_extra = {"assistant": assistant.pk, "version": assistant.version, "documents": _versions(citations)}
    timings["prompt_ms"] = (time.perf_counter() - began) * 1000

    now = timezone.now()
    replaced = None
    with transaction.atomic():
        if regenerate:
            versions = list(
                Message.objects.select_for_update()
                .filter(question=question, role=Role.ASSISTANT)
                .order_by("pk")
                .values_list("pk", "current")
            )
            replaced = next((pk for pk, current in versions if current), None)
            Message.objects.filter(question=question, role=Role.ASSISTANT, current=True).update(current=False)
        else:
            versions = []
            question = Message.objects.create(conversation=conversation, role=Role.USER, content=text, created_at=now)
        answer = Message.objects.create(
            conversation=conversation,
            role=Role.ASSISTANT,
            question=question,
            current=True,
            status=MessageStatus.STREAMING,
            prompt=messages,
            model_name=assistant.model_name or settings.LLM_DEFAULT_MODEL,
            assistant_version=assistant.version,
            created_at=now,
        )
        answer.version = answer.version_count = len(versions) + 1
        answer.previous_version_id = versions[-1][0] if versions else None
        answer.next_version_id = None
        updates = {"updated_at": now}
        if not conversation.title:
            updates["title"] = text[:80] + ("…" if len(text) > 80 else "")
        Conversation.objects.filter(pk=conversation.pk).update(**updates)
        for name, value in updates.items():
            setattr(conversation, name, value)
    return Turn(
        assistant=assistant,
        conversation=conversation,
        user=user,
        question=question,
        answer=answer,
        request=request,
        cache_extra=cache_extra,
        citations=citations,
        regenerate=regenerate,
        replaced=replaced,
        timings=timings,
    )


def preview(assistant, question, documents=None):
    """An answer from a draft (unsaved) assistant, for the "try it" box; nothing is stored."""
    check_assistant(assistant)
    ids = (
        None if assistant.all_documents else [d.pk for d in documents or [] if d.workspace_id == assistant.workspace_id]
    )
    started = time.perf_counter()
    results = retrieve(assistant, question, ids)
    request, citations = build_request(assistant, question, results)
    try:
        result = gateway.complete(
            assistant.workspace_id,
            request,
            cache_extra={"draft": True, "documents": _versions(citations)},
            assistant=assistant.pk,
            origin="preview",
        )
    except gateway.GatewayError as exc:
        raise AnswerError.from_gateway(exc) from None
    return {
        "text": result.text,
        "citations": cited(result.text, citations),
        "cache_hit": result.cache_hit,
        "latency_ms": round((time.perf_counter() - started) * 1000),
    }
