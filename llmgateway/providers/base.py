"""The provider interface: `complete()` and `stream()`, the one error type, and the request's deadline.

A provider turns an OpenAI-shaped chat request into an OpenAI-shaped response
(`complete`) or a sequence of `chat.completion.chunk` dicts (`stream`). It
makes one attempt, over by the model's timeout or the request's `Deadline`,
whichever comes first; retries, back-off, the circuit breaker and the
fallback model are the caller's (see resilience.py), steered by
`ProviderError`.
"""

import time
from collections.abc import Iterator

from corporate.background import ProcessIds

DEADLINE_EXCEEDED = "deadline_exceeded"


class ProviderError(Exception):
    """An upstream failure, with what the gateway's client should see.

    retryable: whether another attempt can help (timeouts, 5xx, 429).
    retry_after: seconds the upstream asked us to wait (429/503), if it said.
    status: the HTTP status for the gateway's own client (429/502/503/504, or
    400 when the upstream refused the request itself).
    """

    def __init__(self, message, *, status=502, retryable=False, retry_after=None, code="upstream_error", param=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code
        self.param = param  # the request field the upstream named, when it refused the request

    def __repr__(self):
        return f"ProviderError({self.status}, {self.code}, retryable={self.retryable})"


class Deadline:
    """When one request's upstream work must be over: all attempts, back-offs and fallbacks included.

    Times are `time.monotonic()` seconds. Made once per request (gateway.Call)
    and handed down to every attempt.
    """

    # A timeout this close to the deadline is the deadline's doing, not the model's.
    SLACK = 0.05

    def __init__(self, seconds):
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self):
        return self.at - time.monotonic()

    def expired(self):
        return self.remaining() <= self.SLACK

    def attempt_until(self, timeout):
        """The end of one attempt: the model's timeout from now, or the deadline if sooner."""
        return min(self.at, time.monotonic() + timeout)

    def error(self):
        return ProviderError(
            f"The model did not answer within the gateway's deadline of {self.seconds:g} s.",
            status=504,
            code=DEADLINE_EXCEEDED,
        )


class Provider:
    """One attempt at a completion against one configured model (`spec`, a registry.ModelSpec)."""

    def __init__(self, spec):
        self.spec = spec

    def complete(self, request: dict, deadline: Deadline) -> dict:
        raise NotImplementedError

    def stream(self, request: dict, deadline: Deadline) -> Iterator[dict]:
        raise NotImplementedError


_completion_ids = ProcessIds(12)


def completion_id():
    """A new completion id (`chatcmpl-` and 24 hex digits), unique across processes."""
    prefix, number = _completion_ids.next()
    return f"chatcmpl-{prefix}{number:012x}"


def response_dict(model, content, usage, *, finish_reason="stop", id_=None, created=None):
    return {
        "id": id_ or completion_id(),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage,
    }


def chunk_dict(id_, created, model, delta, finish_reason=None, usage=None, choices=True):
    chunk = {
        "id": id_,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}] if choices else [],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


# Fields of a completion that its chunks carry too (OpenAI repeats them on every chunk).
SHARED_FIELDS = ("system_fingerprint", "service_tier")


def chunks_from_response(response):
    """A complete response as a stream: role, content, finish, then usage (how a cached answer is replayed).

    Each choice's tool calls, refusal and log probabilities come with its content, so a client reading
    the stream gets what it would have read in the whole response.
    """
    id_, created, model = response.get("id"), response.get("created"), response.get("model")
    shared = {name: response[name] for name in SHARED_FIELDS if response.get(name) is not None}
    chunks = []
    for choice in response.get("choices", []):
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        delta = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            delta["content"] = message.get("content")
            delta["tool_calls"] = [dict(call, index=i) for i, call in enumerate(message["tool_calls"])]
        if message.get("refusal") is not None:
            delta["refusal"] = message["refusal"]
        first = chunk_dict(id_, created, model, delta)
        first["choices"][0]["index"] = index
        if choice.get("logprobs") is not None:
            first["choices"][0]["logprobs"] = choice["logprobs"]
        last = chunk_dict(id_, created, model, {}, finish_reason=choice.get("finish_reason") or "stop")
        last["choices"][0]["index"] = index
        chunks += [first, last]
    if response.get("usage"):
        chunks.append(chunk_dict(id_, created, model, {}, usage=response["usage"], choices=False))
    if shared:
        for chunk in chunks:
            chunk.update(shared)
    return chunks


def _merge_logprobs(slot, logprobs):
    """A chunk's log probabilities added to its choice's: the token lists of `content` and `refusal` grow."""
    if not isinstance(logprobs, dict):
        return
    merged = slot["logprobs"]
    if merged is None:
        merged = slot["logprobs"] = {"content": None, "refusal": None}
    for part in ("content", "refusal"):
        tokens = logprobs.get(part)
        if isinstance(tokens, list):
            merged[part] = (merged[part] or []) + tokens


def response_from_chunks(chunks, model):
    """Assemble streamed chunks into one chat.completion (content, tool calls, refusal, log probabilities,
    finish reason, usage and the fields every chunk repeats)."""
    choices = {}
    usage = None
    id_, created = None, None
    shared = {}
    for chunk in chunks:
        id_ = id_ or chunk.get("id")
        created = created or chunk.get("created")
        if chunk.get("usage"):
            usage = chunk["usage"]
        for name in SHARED_FIELDS:
            if chunk.get(name) is not None:
                shared[name] = chunk[name]
        for choice in chunk.get("choices") or []:
            slot = choices.setdefault(
                choice.get("index", 0),
                {"content": [], "refusal": [], "tool_calls": {}, "finish_reason": None, "logprobs": None},
            )
            delta = choice.get("delta") or {}
            if delta.get("content"):
                slot["content"].append(delta["content"])
            if delta.get("refusal"):
                slot["refusal"].append(delta["refusal"])
            for call in delta.get("tool_calls") or []:
                merged = slot["tool_calls"].setdefault(
                    call.get("index", 0), {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                )
                if call.get("id"):
                    merged["id"] = call["id"]
                if call.get("type"):
                    merged["type"] = call["type"]
                function = call.get("function") or {}
                merged["function"]["name"] += function.get("name") or ""
                merged["function"]["arguments"] += function.get("arguments") or ""
            _merge_logprobs(slot, choice.get("logprobs"))
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]
    out_choices = []
    for index in sorted(choices):
        slot = choices[index]
        message = {
            "role": "assistant",
            "content": "".join(slot["content"]) if slot["content"] or not slot["tool_calls"] else None,
        }
        if slot["refusal"]:
            message["refusal"] = "".join(slot["refusal"])
        if slot["tool_calls"]:
            message["tool_calls"] = [slot["tool_calls"][i] for i in sorted(slot["tool_calls"])]
        out_choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": slot["logprobs"],
                "finish_reason": slot["finish_reason"] or "stop",
            }
        )
    return {
        "id": id_ or completion_id(),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": model,
        "choices": out_choices,
        "usage": usage,
        **shared,
    }
