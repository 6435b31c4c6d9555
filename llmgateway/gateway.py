"""The gateway's Python API: every completion of the platform goes through here.

    from llmgateway import gateway

    result = gateway.complete(workspace, {"model": "offline", "messages": [...]})
    result.response      # the OpenAI-shaped chat.completion dict
    result.text          # the first choice's content
    result.cache_hit, result.coalesced, result.usage, result.cost, result.latency_ms, result.model

    stream = gateway.complete(workspace, request, stream=True)   # or gateway.stream(...)
    stream.cache_hit                                             # known before the first chunk
    for chunk in stream:                                         # chat.completion.chunk dicts
        ...
    stream.result                                                # CompletionResult once exhausted

Arguments:
- workspace: a Workspace or its id. Its cache policy ("all", "deterministic",
  "none") decides what is cached; callers check their own permissions.
- request: OpenAI chat-completions fields (model may be omitted: the default
  model). Validated here; a bad request raises GatewayError(400).
- cache_control: None, a CacheControl, a dict like the body's `cache`
  object ({"ttl": 600, "no-cache": True, "no-store": True}) or a
  Cache-Control header string.
- cache_extra: anything JSON-serialisable that must also change the cache
  key, e.g. {"assistant": 7, "version": 3, "documents": {"12": 5}}.
- user: who asked (for the usage hook).

Upstream faults come back as GatewayError with an OpenAI error body
(`error.body()`) and the right status (400/404/429/502/503/504). Every
request is over by its deadline (LLM_DEADLINE_SECONDS, or the model's own),
retries and fallbacks included: then a 504 `deadline_exceeded`, also as the
last event of a stream that had started.

Input is capped: LLM_MAX_MESSAGES messages and LLM_MAX_INPUT_CHARS characters
of message content per request (400 `too_many_messages` / `input_too_long`).

Passages for the offline model: see providers/offline.py.
"""

import logging
import math
import time
from dataclasses import dataclass, field

from django.conf import settings

from llmgateway import coalesce, registry, stats
from llmgateway.caching import (
    CachedCompletion,
    completion_key,
    is_deterministic,
    load_workspace_info,
    parse_workspace_info,
    workspace_info_key,
)
from llmgateway.providers import resilience
from llmgateway.providers.base import Deadline, ProviderError, chunks_from_response, response_from_chunks
from llmgateway.store import get_store
from llmgateway.usage import hook

log = logging.getLogger("llmgateway")

# Fields that would let a client choose the upstream or its credentials.
FORBIDDEN_FIELDS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "api_type",
        "azure_endpoint",
        "azure_deployment",
        "deployment_id",
        "organization",
        "engine",
        "headers",
        "extra_headers",
    }
)
KNOWN_FIELDS = frozenset(
    {
        "model",
        "messages",
        "temperature",
        "top_p",
        "n",
        "stream",
        "stream_options",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "response_format",
        "seed",
        "metadata",
        "store",
        "service_tier",
        "reasoning_effort",
        "modalities",
        "audio",
        "prediction",
        "web_search_options",
        "verbosity",
        "safety_identifier",
        "prompt_cache_key",
        "cache",
    }
)
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
# A leader's coalescing lock outlives its deadline by this much (time to hand over the answer).
LOCK_MARGIN_SECONDS = 10
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    """An error for the client, in OpenAI's shape."""

    def __init__(self, status, message, *, code=None, param=None, type=None, retry_after=None):  # noqa: A002
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type or ERROR_TYPES.get(status, "api_error")
        self.retry_after = retry_after

    def body(self):
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def as_dict(self):
        return {
            "status": self.status,
            "message": self.message,
            "code": self.code,
            "param": self.param,
            "type": self.type,
            "retry_after": self.retry_after,
        }

    @classmethod
    def from_dict(cls, data):
        return cls(
            data["status"],
            data["message"],
            code=data.get("code"),
            param=data.get("param"),
            type=data.get("type"),
            retry_after=data.get("retry_after"),
        )

    @classmethod
    def from_provider(cls, exc: ProviderError):
        retry_after = int(exc.retry_after + 0.999) if exc.retry_after is not None else None
        return cls(exc.status, exc.message, code=exc.code, retry_after=retry_after)


def _bad(message, param=None, code=None):
    return GatewayError(400, message, param=param, code=code)


# Cache control -----------------------------------------------------------


@dataclass(frozen=True)
class CacheControl:
    """no_cache: skip the lookup and refresh the entry; no_store: do not store; ttl: seconds to keep."""

    no_cache: bool = False
    no_store: bool = False
    ttl: int | None = None

    @classmethod
    def from_header(cls, value):
        tokens = {part.strip().lower() for part in (value or "").split(",")}
        return cls(no_cache="no-cache" in tokens, no_store="no-store" in tokens)

    @classmethod
    def from_body(cls, value):
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise _bad('`cache` must be an object like {"ttl": 600, "no-cache": true}.', "cache")
        known = {"ttl", "no-cache", "no_cache", "no-store", "no_store"}
        for name in value:
            if name not in known:
                raise _bad(f"Unknown cache option {name!r}; use ttl, no-cache or no-store.", f"cache.{name}")
        flags = {}
        for option in ("no-cache", "no-store"):
            raw = value.get(option, value.get(option.replace("-", "_"), False))
            if not isinstance(raw, bool):
                raise _bad(f"cache.{option} must be true or false.", f"cache.{option}")
            flags[option.replace("-", "_")] = raw
        ttl = value.get("ttl")
        if ttl is not None and (
            isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= settings.LLM_CACHE_MAX_TTL
        ):
            raise _bad(
                f"cache.ttl must be a whole number of seconds from 1 to {settings.LLM_CACHE_MAX_TTL}.", "cache.ttl"
            )
        return cls(ttl=ttl, **flags)

    @classmethod
    def coerce(cls, value):
        if value is None or isinstance(value, cls):
            return value or cls()
        if isinstance(value, str):
            return cls.from_header(value)
        return cls.from_body(value)

    def merge(self, other):
        return CacheControl(
            no_cache=self.no_cache or other.no_cache,
            no_store=self.no_store or other.no_store,
            ttl=other.ttl if other.ttl is not None else self.ttl,
        )


# Validation --------------------------------------------------------------


def _number(request, name, low, high, integer=False):
    value = request.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise _bad(f"{name} must be {'a whole number' if integer else 'a number'}.", name)
    if not low <= value <= high:
        raise _bad(f"{name} must be between {low} and {high}.", name)


def _check_message_count(messages):
    limit = settings.LLM_MAX_MESSAGES
    if len(messages) > limit:
        raise _bad(
            f"A request may hold at most {limit:,} messages; this one has {len(messages):,}.",
            "messages",
            code="too_many_messages",
        )


def _content_chars(content):
    """Characters of one message's content: the string, or the text of its parts (checked before)."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(len(part.get("text") or "") for part in content)
    return 0


def _check_input_chars(messages):
    limit = settings.LLM_MAX_INPUT_CHARS
    total = sum(_content_chars(message.get("content")) for message in messages)
    if total > limit:
        raise _bad(
            f"The messages hold {total:,} characters; a request may send at most {limit:,}.",
            "messages",
            code="input_too_long",
        )


def validate_request(body):
    """A checked copy of an OpenAI chat-completions request; GatewayError(400) names the bad field."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.")
    for name in body:
        if name in FORBIDDEN_FIELDS:
            raise _bad(
                f"{name!r} is not accepted: the gateway chooses the upstream and its credentials.",
                name,
                code="forbidden_parameter",
            )
        if name not in KNOWN_FIELDS:
            raise _bad(f"Unrecognized request argument supplied: {name}", name, code="unknown_parameter")
    request = dict(body)
    model = request.get("model")
    if model is not None and (not isinstance(model, str) or not 0 < len(model) <= 200):
        raise _bad("model must be a model name.", "model")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list.", "messages")
    _check_message_count(messages)
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad("Each message must be an object.", f"messages[{index}]")
        if message.get("role") not in ROLES:
            raise _bad(f"messages[{index}].role must be one of {', '.join(sorted(ROLES))}.", f"messages[{index}].role")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _bad("content must be a string or a list of parts.", f"messages[{index}].content")
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            raise _bad("content parts must be objects.", f"messages[{index}].content")
        if isinstance(content, list) and any(not isinstance(part.get("text", ""), str) for part in content):
            raise _bad("the text of a content part must be a string.", f"messages[{index}].content")
    _check_input_chars(messages)
    _number(request, "temperature", 0, 2)
    _number(request, "top_p", 0, 1)
    _number(request, "presence_penalty", -2, 2)
    _number(request, "frequency_penalty", -2, 2)
    _number(request, "n", 1, 8, integer=True)
    _number(request, "max_tokens", 1, 10_000_000, integer=True)
    _number(request, "max_completion_tokens", 1, 10_000_000, integer=True)
    _number(request, "seed", -(2**63), 2**63 - 1, integer=True)
    stop = request.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        raise _bad("stop must be a string or a list of up to 4 strings.", "stop")
    if "stream" in request and not isinstance(request["stream"], bool | None):
        raise _bad("stream must be true or false.", "stream")
    for name, kind in (("tools", list), ("response_format", dict), ("stream_options", dict), ("metadata", dict)):
        if request.get(name) is not None and not isinstance(request[name], kind):
            raise _bad(f"{name} must be {'a list' if kind is list else 'an object'}.", name)
    return request


# The call ------------------------------------------------------------------


@dataclass
class Call:
    """One completion on its way through the gateway (what the usage hook sees)."""

    workspace_id: int
    request: dict
    spec: registry.ModelSpec
    key: str
    control: CacheControl
    user_id: int | None = None
    api_key_id: int | None = None
    started: float = field(default_factory=time.perf_counter)
    lookup: bool = False
    store: bool = False
    generation: int = 0
    deadline: Deadline | None = None  # from the spec when not given

    def __post_init__(self):
        if self.deadline is None:
            self.deadline = resilience.deadline_for(self.spec)

    @property
    def model(self):
        return self.spec.name

    def elapsed_ms(self):
        return (time.perf_counter() - self.started) * 1000

    def ttl(self):
        return min(self.control.ttl or self.spec.cache_ttl, settings.LLM_CACHE_MAX_TTL)


@dataclass(frozen=True)
class CompletionResult:
    response: dict
    model: str
    cache_hit: bool = False
    coalesced: bool = False
    usage: dict | None = None
    cost: float = 0.0
    latency_ms: float = 0.0
    stored: bool = False
    fallback: bool = False
    upstream_ms: float | None = None  # this request's own upstream call, when it made one

    @property
    def text(self):
        choices = self.response.get("choices") or [{}]
        return (choices[0].get("message") or {}).get("content") or ""


def prepare(workspace, request, *, cache_control=None, user=None, cache_extra=None, api_key=None, spec=None):
    """Validate and resolve a request into a Call (no I/O when the model spec is given)."""
    request = validate_request(request)
    control = CacheControl.coerce(cache_control).merge(CacheControl.from_body(request.pop("cache", None)))
    if spec is None:
        spec = registry.get_spec(request.get("model"))
    if spec is None:
        name = request.get("model") or settings.LLM_DEFAULT_MODEL
        raise GatewayError(
            404, f"The model {name!r} does not exist or is not enabled.", code="model_not_found", param="model"
        )
    workspace_id = getattr(workspace, "pk", workspace)
    return Call(
        workspace_id=workspace_id,
        request=request,
        spec=spec,
        key=completion_key(workspace_id, request, spec.identity, cache_extra),
        control=control,
        user_id=getattr(user, "pk", user),
        api_key_id=getattr(api_key, "id", None),
    )


def _begin(call, prefetched=None):
    """Admit the call, read the workspace's policy and the cache entry in one round trip; the entry on a hit.

    prefetched: (raw workspace info, raw entry) already read by the caller in its own round trip.
    """
    hook.admit(call)
    raw_info, raw_entry = prefetched or get_store().get_many([workspace_info_key(call.workspace_id), call.key])
    info = parse_workspace_info(raw_info) if raw_info else load_workspace_info(call.workspace_id)
    if info is None:
        raise GatewayError(404, "No such workspace.", code="workspace_not_found")
    if info.archived:
        raise GatewayError(403, "This workspace is archived; completions are off until an admin restores it.")
    policy = info.cache_policy
    cacheable = policy == "all" or (policy == "deterministic" and is_deterministic(call.request))
    call.lookup = cacheable and not call.control.no_cache
    call.store = cacheable and not call.control.no_store
    call.generation = info.generation
    if call.lookup and raw_entry:
        entry = CachedCompletion.loads(raw_entry)
        if entry.generation == info.generation:
            return entry
    return None


def _recheck(call, part):
    """After opening a flight: an identical call may have finished between the lookup and now."""
    if not call.lookup or part.role == "solo" or isinstance(part, coalesce.LocalFollower):
        return None
    raw = part.recheck if part.rechecked else get_store().get_many([call.key])[0]
    if raw:
        entry = CachedCompletion.loads(raw)
        if entry.generation == call.generation:
            return entry
    return None


def _participate(call):
    if not (call.lookup and call.store):
        return coalesce.Participation()
    # The leader is done by its deadline; a lock left by a leader that died lasts no longer.
    lock_ttl = math.ceil(max(call.deadline.remaining(), 0)) + LOCK_MARGIN_SECONDS
    return coalesce.enter(call.key, lock_ttl)


def _open_flight(call):
    """(participation, cache entry found on re-reading it or None); the flight is left if the re-read fails."""
    part = _participate(call)
    try:
        return part, _recheck(call, part)
    except BaseException:
        part.leave()
        raise


def _hit_result(call, entry):
    result = CompletionResult(
        response=entry.response,
        model=entry.model,
        cache_hit=True,
        usage=entry.response.get("usage"),
        cost=entry.cost,
        latency_ms=call.elapsed_ms(),
        stored=True,
    )
    stats.record(call.workspace_id, "hit", result.latency_ms, result.usage, result.cost)
    hook.record(call, result)
    return result


def _payload(entry_or_response, model, cost, upstream_ms):
    return {"response": entry_or_response, "model": model, "cost": cost, "upstream_ms": upstream_ms}


def _store_ops(call, response, used, cost, upstream_ms, chunks=None):
    """The store operation that caches the answer (run with the flight's end), or none."""
    if not call.store or used.name != call.spec.name:
        # Answers from a fallback model are not kept under the requested model's key.
        return []
    entry = CachedCompletion(
        response=response,
        generation=call.generation,
        model=used.name,
        cost=cost,
        upstream_ms=round(upstream_ms, 1),
        chunks=tuple(chunks) if chunks is not None else None,
    )
    return [("set", call.key, entry.dumps(), call.ttl())]


def _fail(call, part, exc):
    error = GatewayError.from_provider(exc)
    part.fail(error.as_dict())
    stats.record(call.workspace_id, "error", call.elapsed_ms())
    return error


def _follower_error(call, exc):
    """The GatewayError for a follower whose leader failed or whose own deadline passed."""
    stats.record(call.workspace_id, "error", call.elapsed_ms())
    if isinstance(exc, coalesce.Expired):
        return GatewayError.from_provider(call.deadline.error())
    return GatewayError.from_dict(exc.error)


def _finish(call, response, used, upstream_ms, *, coalesced=False, stored=False):
    usage = response.get("usage")
    cost = used.cost(usage)
    result = CompletionResult(
        response=response,
        model=used.name,
        coalesced=coalesced,
        usage=usage,
        cost=cost,
        latency_ms=call.elapsed_ms(),
        stored=stored,
        fallback=used.name != call.spec.name,
        upstream_ms=None if coalesced else round(upstream_ms, 2),
    )
    outcome = "coalesced" if coalesced else ("miss" if call.lookup else "bypass")
    stats.record(call.workspace_id, outcome, result.latency_ms, usage, cost)
    hook.record(call, result)
    return result


def _spec_named(call, name):
    return call.spec if name == call.spec.name else (registry.get_spec(name) or call.spec)


def release_database(spec=None):
    """Hand the request's database connection back before waiting on a model (not the offline one: it answers at once).

    A gevent worker has a small pool of connections (DB_POOL_SIZE); one held
    through a model call of several seconds would make other requests wait.
    Inside a transaction the connection is kept (it holds the transaction).
    """
    from django.db import connection

    if spec is not None and spec.provider == "offline":
        return
    if connection.connection is not None and not connection.in_atomic_block:
        connection.close()


def _lead(call, part):
    """Make the upstream call for this flight; the flight ends on every path (answer, error, or abandoned)."""
    started = time.perf_counter()
    try:
        release_database(call.spec)
        response, used = resilience.complete(call.spec, call.request, call.deadline)
        upstream_ms = (time.perf_counter() - started) * 1000
        response["model"] = used.name
        cost = used.cost(response.get("usage"))
        ops = _store_ops(call, response, used, cost, upstream_ms)
        part.finish(_payload(response, used.name, cost, upstream_ms), also=ops)
    except ProviderError as exc:
        raise _fail(call, part, exc) from None
    finally:
        part.leave()
    return _finish(call, response, used, upstream_ms, stored=bool(ops))


def _follow(call, part):
    """The leader's answer as this request's result; raises GatewayError, or coalesce.Abandoned."""
    try:
        payload = None
        release_database()
        for kind, data in part.follow(call.deadline.at):
            if kind == "done":
                payload = data
        return _finish(call, payload["response"], _spec_named(call, payload["model"]), 0, coalesced=True)
    except (coalesce.Failed, coalesce.Expired) as exc:
        raise _follower_error(call, exc) from None
    finally:
        part.leave()


def _run(call, prefetched=None):
    entry = _begin(call, prefetched)
    if entry is not None:
        return _hit_result(call, entry)
    part, entry = _open_flight(call)
    if entry is not None:
        part.finish(_payload(entry.response, entry.model, entry.cost, entry.upstream_ms))
        return _hit_result(call, entry)
    if part.role == "follower":
        try:
            return _follow(call, part)
        except coalesce.Abandoned:
            part = coalesce.Participation()
    return _lead(call, part)


class CompletionStream:
    """Iterate for chat.completion.chunk dicts; `result` is set once the stream is exhausted.

    `cache_hit` and `coalesced` are known as soon as the object exists, so a
    view can set its headers before the first chunk.

    A stream that will not be read to its end should be closed (`close()`):
    that hangs up on the upstream and lets identical requests waiting on
    this one go ahead. One dropped unread is closed when it is collected.
    """

    def __init__(self, call, prefetched=None):
        self.call = call
        self.result = None
        self._source = None
        options = call.request.get("stream_options") or {}
        self.include_usage = bool(options.get("include_usage"))
        self._part = None
        self._entry = _begin(call, prefetched)
        if self._entry is None:
            self._part, self._entry = _open_flight(call)
            if self._entry is not None:
                entry = self._entry
                self._part.finish(_payload(entry.response, entry.model, entry.cost, entry.upstream_ms))
        self.cache_hit = self._entry is not None
        self.coalesced = not self.cache_hit and self._part.role == "follower"

    def __iter__(self):
        if self.cache_hit:
            source = self._replay(self._entry)
        elif self.coalesced:
            source = self._follow(self._part)
        else:
            source = self._lead(self._part)
        self._source = source
        try:
            for chunk in source:
                if not self.include_usage and not chunk.get("choices") and chunk.get("usage"):
                    continue
                yield chunk
        finally:
            source.close()

    def close(self):
        """Stop here: hang up on the upstream, and end this request's part in its flight. Safe to repeat."""
        source, self._source = self._source, None
        if source is not None:
            source.close()
        if self._part is not None:
            self._part.leave()

    def __del__(self):
        try:
            self.close()
        except Exception:  # nothing to report to while being collected
            pass

    def _replay(self, entry):
        yield from entry.chunks if entry.chunks is not None else chunks_from_response(entry.response)
        self.result = _hit_result(self.call, entry)

    def _follow(self, part):
        call, got_chunks, payload = self.call, False, None
        try:
            release_database()
            for kind, data in part.follow(call.deadline.at):
                if kind == "chunk":
                    got_chunks = True
                    yield data
                else:
                    payload = data
        except (coalesce.Failed, coalesce.Expired) as exc:
            raise _follower_error(call, exc) from None
        except coalesce.Abandoned:
            if got_chunks:
                stats.record(call.workspace_id, "error", call.elapsed_ms())
                raise GatewayError(502, "The shared upstream stream stopped; retry the request.") from None
            self.coalesced = False
            self._part = coalesce.Participation()
            yield from self._lead(self._part)
            return
        finally:
            part.leave()
        if not got_chunks:
            yield from chunks_from_response(payload["response"])
        self.result = _finish(call, payload["response"], _spec_named(call, payload["model"]), 0, coalesced=True)

    def _lead(self, part):
        """Stream from the upstream for this flight; on every way out the upstream is hung up on and the flight ends.

        If the client goes away (GeneratorExit) or something breaks, followers make their own call.
        """
        call = self.call
        started = time.perf_counter()
        collected = []
        chunks = None
        try:
            release_database(call.spec)
            used, chunks = resilience.stream(call.spec, call.request, call.deadline)
            for chunk in chunks:
                chunk["model"] = used.name
                collected.append(chunk)
                part.publish(chunk)
                yield chunk
            upstream_ms = (time.perf_counter() - started) * 1000
            response = response_from_chunks(collected, used.name)
            cost = used.cost(response.get("usage"))
            ops = _store_ops(call, response, used, cost, upstream_ms, chunks=collected)
            part.finish(_payload(response, used.name, cost, upstream_ms), also=ops)
        except ProviderError as exc:
            raise _fail(call, part, exc) from None
        finally:
            if chunks is not None:
                chunks.close()
            part.leave()
        self.result = _finish(call, response, used, upstream_ms, stored=bool(ops))


def complete(
    workspace, request, *, cache_control=None, stream=False, user=None, cache_extra=None, api_key=None, spec=None
):
    """A completion through the cache; a CompletionResult, or a CompletionStream when stream=True.

    `api_key` and `spec` are for the gateway's own views (an authenticated
    key's info, a model spec already read from the cache).
    """
    request = dict(request)
    if stream:
        request["stream"] = True
    call = prepare(
        workspace, request, cache_control=cache_control, user=user, cache_extra=cache_extra, api_key=api_key, spec=spec
    )
    return execute(call)


def execute(call, prefetched=None):
    """Run a prepared Call: a CompletionResult, or a CompletionStream for a streaming request."""
    if call.request.get("stream"):
        return CompletionStream(call, prefetched)
    return _run(call, prefetched)


def stream(workspace, request, **kwargs):
    """complete(..., stream=True): a CompletionStream."""
    return complete(workspace, request, stream=True, **kwargs)
