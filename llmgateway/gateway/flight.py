"""One completion's way through the cache: hit, coalesced follow, or lead and store — written once.

A whole answer is a stream consumed to the end: `Completion` decides at once
(before the first chunk) whether the answer is a hit, follows an identical
call already in flight, or leads its own upstream call, and iterating it
yields the answer's chunks. A caller that wants the whole answer iterates
without asking for chunks (`Completion.whole()`): the same routine runs, a
hit hands back the stored response, and a lead calls the upstream for a
whole answer instead of a stream. Statistics and the usage hook are told
once, when the completion ends.
"""

import logging
import math
import time
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings

from llmgateway import metering, registry
from llmgateway.cache import coalesce, stats
from llmgateway.cache.entries import (
    CachedCompletion,
    completion_key,
    is_deterministic,
    parsed_entry,
    response_json,
    workspace_info,
    workspace_info_key,
)
from llmgateway.cache.memo import BoundedMemo
from llmgateway.cache.store import get_store
from llmgateway.gateway.controls import CacheControl
from llmgateway.gateway.errors import GatewayError
from llmgateway.gateway.validation import check_chat_model, validate_request
from llmgateway.metering import limits
from llmgateway.providers import resilience
from llmgateway.providers.base import (
    Deadline,
    ProviderError,
    chunk_dict,
    chunks_from_response,
    completion_id,
    response_from_chunks,
)
from llmgateway.usage import hook

log = logging.getLogger("llmgateway.gateway")

# A leader's coalescing lock outlives its deadline by this much (time to hand over the answer).
LOCK_MARGIN_SECONDS = 10
# Each workspace's cache policy as last read: whether to ask for the coalescing lock with the lookup.
_policies = BoundedMemo()


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
    assistant_id: int | None = None
    origin: str = "python"  # v1 | chat | preview | python: where the request came from (usage records)
    key_limits: dict | None = None  # the API key's own limits (KeyInfo.limits)
    request_id: str | None = None  # set when admitted
    ticket: object = None  # the metering reservation, settled when the completion ends
    ahead: object = None  # a reservation made with the cache lookup, confirmed by the usage hook's admit

    def __post_init__(self):
        if self.deadline is None:
            self.deadline = resilience.deadline_for(self.spec)

    @property
    def model(self):
        return self.spec.name

    @property
    def streaming(self):
        return bool(self.request.get("stream"))

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
    ratelimit: dict | None = None  # the x-ratelimit-* headers, when limits apply
    body: bytes | None = None  # `response` as compact JSON, when it was at hand (a hit, a whole answer's call)
    request_id: str | None = None  # the usage record's id (the x-request-id header)

    @property
    def text(self):
        choices = self.response.get("choices") or [{}]
        return (choices[0].get("message") or {}).get("content") or ""


def prepare(
    workspace,
    request,
    *,
    cache_control=None,
    user=None,
    cache_extra=None,
    api_key=None,
    spec=None,
    assistant=None,
    origin="python",
):
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
    check_chat_model(spec)
    workspace_id = getattr(workspace, "pk", workspace)
    return Call(
        workspace_id=workspace_id,
        request=request,
        spec=spec,
        key=completion_key(workspace_id, request, spec.identity, cache_extra),
        control=control,
        user_id=getattr(user, "pk", user),
        api_key_id=getattr(api_key, "id", None),
        key_limits=getattr(api_key, "limits", None),
        assistant_id=getattr(assistant, "pk", assistant),
        origin=origin,
    )


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


def _admit(call, prefetched=None):
    """Read the workspace's policy and the cache entry in one round trip, admit the call; the entry on a hit.

    prefetched: (raw workspace info, raw entry) already read in the caller's own round trip.
    The usage hook learns whether the entry answers the call before it is used (a hit
    counts towards request limits only).
    """
    if prefetched is None:
        prefetched = _lookup(call)
    try:
        return _admit_found(call, prefetched[0], prefetched[1])
    except BaseException:
        if call.ahead is not None:
            call.ahead.undo()  # refused before its limits were confirmed: the request is given back
        raise


def _lookup(call):
    """The workspace's policy and the entry, the call's limits reserved in the same round trip when known."""
    keys = [workspace_info_key(call.workspace_id), call.key]
    call.ahead = hook.ahead(call.workspace_id, call.user_id, call.api_key_id, call.deadline.remaining())
    return limits.lookup_and_admit(keys, call.ahead) if call.ahead is not None else get_store().get_many(keys)


def _admit_found(call, raw_info, raw_entry):
    found, info = workspace_info.from_cached(raw_info, call.workspace_id)
    if not found:
        info = workspace_info.load(call.workspace_id)
    if info is None:
        raise GatewayError(404, "No such workspace.", code="workspace_not_found")
    if info.archived:
        raise GatewayError(403, "This workspace is archived; completions are off until an admin restores it.")
    policy = info.cache_policy
    if _policies.get(call.workspace_id) != policy:
        _policies.put(call.workspace_id, policy)
    cacheable = policy == "all" or (policy == "deterministic" and is_deterministic(call.request))
    call.lookup = cacheable and not call.control.no_cache
    call.store = cacheable and not call.control.no_store
    call.generation = info.generation
    entry = _current(call, raw_entry) if call.lookup else None
    hook.admit(call, entry is not None, info)
    return entry


def _current(call, raw):
    """The cached entry in raw bytes (or not yet written), if it belongs to the workspace's current generation."""
    entry = parsed_entry(raw) if raw else unwritten.get(call.key)
    if entry is not None and entry.generation == call.generation:
        return entry
    return None


# Cache entries stored by this process whose write has not been sent yet: key -> CachedCompletion.
unwritten = {}


def _entry_write(key, entry, ttl):
    return [("set", key, entry.dumps(), ttl)]


def _written(key, entry):
    if unwritten.get(key) is entry:
        unwritten.pop(key, None)


def _recheck(call, part):
    """After opening a flight: an identical call may have finished between the lookup and now."""
    if not call.lookup or part.role == "solo" or isinstance(part, coalesce.LocalFollower):
        return None
    return _current(call, part.recheck if part.rechecked else get_store().get_many([call.key])[0])


def _lock_ttl(call):
    # The leader is done by its deadline; a lock left by a leader that died lasts no longer.
    return math.ceil(max(call.deadline.remaining(), 0)) + LOCK_MARGIN_SECONDS


def prelock(call):
    """The coalescing lock to ask for with the call's cache lookup (coalesce.Prelock), or None.

    Asked for when the call would coalesce as far as this process knows (the
    workspace's policy as last read, the request's cache controls), and only
    with a shared store; the lookup takes it only if the entry is missing.
    """
    if call.control.no_cache or call.control.no_store or not get_store().shared:
        return None
    policy = _policies.get(call.workspace_id)
    if policy != "all" and (policy != "deterministic" or not is_deterministic(call.request)):
        return None
    return coalesce.Prelock(call.key, _lock_ttl(call))


def _participate(call, lock=None):
    if not (call.lookup and call.store):
        return coalesce.Participation()
    return coalesce.enter(call.key, _lock_ttl(call), lock)


def _open_flight(call, lock=None):
    """(participation, cache entry found on re-reading it or None); the flight is left if the re-read fails."""
    part = _participate(call, lock)
    try:
        return part, _recheck(call, part)
    except BaseException:
        part.leave()
        raise


def _payload(response, model, cost, upstream_ms):
    """What a leader hands its followers."""
    return {"response": response, "model": model, "cost": cost, "upstream_ms": upstream_ms}


def _renamed(chunks, id_):
    """The chunks under the completion id `id_` (copies: stored chunks are shared between requests)."""
    for chunk in chunks:
        yield {**chunk, "id": id_} if "id" in chunk else chunk


def _spec_named(call, name):
    return call.spec if name == call.spec.name else (registry.get_spec(name) or call.spec)


def _with_usage(chunks, collected, request, model):
    """The upstream's chunks, then, when it counted no tokens, a usage chunk counted from the text (as OpenAI
    always sends one). `collected`: the chunks so far, which the caller appends each one to."""
    yield from chunks
    if not any(metering.counted(chunk.get("usage")) for chunk in collected):
        response = response_from_chunks(collected, model)
        usage = metering.estimated_usage(request, response)
        yield chunk_dict(response.get("id"), response.get("created"), model, {}, usage=usage, choices=False)


def _name_request(exc, error):
    """The failure's usage record id on the exception raised, for the answer's x-request-id (`request_id`)."""
    if exc is not error and getattr(error, "request_id", None) and not isinstance(exc, GeneratorExit):
        try:
            exc.request_id = error.request_id
        except AttributeError:  # an exception type without a __dict__
            pass


class Completion:
    """A completion under way. `cache_hit` and `coalesced` are known at once, so a view can set its headers.

    Iterate for chat.completion.chunk dicts (`result` is set once the
    iteration ends), or call `whole()` for the CompletionResult. A stream
    that will not be read to its end should be closed (`close()`): that
    hangs up on the upstream and lets identical requests waiting on this one
    go ahead; when identical requests follow this one's upstream call, it is
    read to its end for them first (close() returns then). One dropped
    unread is closed when it is collected.
    """

    def __init__(self, call, prefetched=None):
        """prefetched: (raw workspace info, raw entry[, coalesce.Prelock]) read with the caller's lookup."""
        self.call = call
        self.result = None
        self._want_chunks = call.streaming
        self._part = None
        self._source = None
        self._recorded = False
        lock = prefetched[2] if prefetched and len(prefetched) > 2 else None
        try:
            self._open(prefetched, lock)
        except BaseException:
            # Recorded where it failed (the limits' refusal is): never as a cancellation when collected.
            self._recorded = True
            raise
        finally:
            if lock is not None:
                lock.release()  # not used (a hit, an error, no coalescing after all): given back
        self.cache_hit = self._entry is not None
        self.coalesced = not self.cache_hit and self._part.role == "follower"

    def _open(self, prefetched, lock):
        """Admit the call, then (not a hit) take part in its flight; `lock`: the lookup's coalescing lock."""
        call = self.call
        self._entry = _admit(call, prefetched)
        try:
            if self._entry is None:
                self._part, self._entry = _open_flight(call, lock)
                if self._entry is not None:
                    entry = self._entry
                    self._part.finish(_payload(entry.response, entry.model, entry.cost, entry.upstream_ms))
        except BaseException as exc:
            self._recorded = True
            error = exc if isinstance(exc, GatewayError) else GatewayError(500, str(exc))
            hook.record(call, None, error)
            _name_request(exc, error)
            raise

    # The one routine -----------------------------------------------------

    def __iter__(self):
        include_usage = bool((self.call.request.get("stream_options") or {}).get("include_usage"))
        self._source = source = self._run()
        try:
            for chunk in source:
                if not include_usage and not chunk.get("choices") and chunk.get("usage"):
                    continue
                yield chunk
        except GatewayError as error:
            self._record("error", error)
            raise
        except Exception as exc:
            # Not a cancellation: the reservation is released, as for any failed completion.
            error = GatewayError(500, f"The completion failed: {exc.__class__.__name__}.")
            self._record("error", error)
            _name_request(exc, error)
            raise
        finally:
            source.close()
            self._cancelled()
        self._record()

    def _cancelled(self):
        """The client left before the end (or never read): the usage hook hears of it once."""
        if self._recorded:
            return
        if self.result is not None:
            self._record()
        else:
            self._recorded = True
            hook.record(self.call, None, None)

    def close(self):
        """Stop here: hang up on the upstream, and end this request's part in its flight. Safe to repeat."""
        source, self._source = self._source, None
        if source is not None:
            source.close()
        if self._part is not None:
            self._part.leave()
        self._cancelled()

    def __del__(self):
        try:
            self.close()
        except Exception:  # nothing to report to while being collected
            pass

    def whole(self):
        """The CompletionResult, without producing chunks."""
        self._want_chunks = False
        for _ in self:
            pass
        return self.result

    def _run(self):
        if self.cache_hit:
            yield from self._replay(self._entry)
        elif self.coalesced:
            yield from self._follow()
        else:
            yield from self._lead(self._part)

    def _replay(self, entry):
        # Every answer has an id of its own, as OpenAI's do: a hit is not the answer it was stored from.
        id_ = completion_id()
        response = entry.response_as(id_)
        if self._want_chunks:
            yield from _renamed(entry.chunks if entry.chunks is not None else chunks_from_response(response), id_)
        self.result = CompletionResult(
            response=response,
            model=entry.model,
            cache_hit=True,
            usage=response.get("usage"),
            cost=entry.cost,
            latency_ms=self.call.elapsed_ms(),
            stored=True,
            ratelimit=self._ratelimit(),
            body=None if self._want_chunks else entry.response_json_as(id_),
            request_id=self.call.request_id,
        )

    def _ratelimit(self):
        ticket = self.call.ticket
        return ticket.headers() if ticket is not None else None

    def _follow(self):
        call, part, got_chunks, payload = self.call, self._part, False, None
        id_ = completion_id()  # the leader's answer, under an id of this request's own
        try:
            release_database()
            for kind, data in part.follow(call.deadline.at):
                if kind == "chunk":
                    got_chunks = True
                    if self._want_chunks:
                        yield {**data, "id": id_} if "id" in data else data
                else:
                    payload = data
        except coalesce.Failed as failed:
            raise GatewayError.from_dict(failed.error) from None
        except coalesce.Expired:
            raise GatewayError.from_provider(call.deadline.error()) from None
        except coalesce.Abandoned:
            if got_chunks and self._want_chunks:
                raise GatewayError(502, "The shared upstream stream stopped; retry the request.") from None
            # The leader vanished before answering: make our own call.
            self.coalesced = False
            self._part = coalesce.Participation()
            yield from self._lead(self._part)
            return
        finally:
            part.leave()
        response = payload["response"]
        if "id" in response:
            response = {**response, "id": id_}
        if self._want_chunks and not got_chunks:
            yield from chunks_from_response(response)
        self._finish(response, _spec_named(call, payload["model"]), 0, coalesced=True)

    def _lead(self, part):
        """Make the upstream call for this flight; on every way out the upstream is hung up on and the flight ends.

        If the client goes away (GeneratorExit) while others follow, the answer is read to its end for them;
        with no follower, or if something breaks, the upstream is hung up on and followers make their own call.
        """
        call = self.call
        started = time.perf_counter()
        collected = chunks = None
        reading = True  # the client still reads (it left, and others follow: False)
        try:
            release_database(call.spec)
            if self._want_chunks:
                collected = []
                used, chunks = resilience.stream(call.spec, call.request, call.deadline)
                for chunk in _with_usage(chunks, collected, call.request, used.name):
                    chunk["model"] = used.name
                    collected.append(chunk)
                    part.publish(chunk)
                    if reading:
                        try:
                            yield chunk
                        except GeneratorExit:
                            if not part.has_followers():
                                raise  # nobody else reads it: hang up on the upstream
                            # This client left, identical requests follow: the answer goes on for them
                            # (and into the cache), without another yield.
                            reading = False
                response = response_from_chunks(collected, used.name)
            else:
                response, used = resilience.complete(call.spec, call.request, call.deadline)
                response["model"] = used.name
                if not metering.counted(response.get("usage")):
                    response["usage"] = metering.estimated_usage(call.request, response)
            upstream_ms = (time.perf_counter() - started) * 1000
            cost = used.cost(response.get("usage"))
            # A whole answer's JSON is made once: the client's body, the cache entry and the flight's last event.
            body = None if self._want_chunks else response_json(response)
            entry = self._storing(response, used, cost, upstream_ms, collected, body)
            payload = _payload(response, used.name, cost, upstream_ms)
            if entry is None:
                part.finish(payload, response_json=body)
            else:
                # Kept here until its write is sent (after the response: cache/deferred.py).
                unwritten[call.key] = entry
                also = partial(_entry_write, call.key, entry, call.ttl())
                part.finish(payload, also=also, response_json=body, written=partial(_written, call.key, entry))
        except ProviderError as exc:
            error = GatewayError.from_provider(exc)
            part.fail(error.as_dict())
            if reading:
                raise error from None
            return  # its client left: the followers have the error
        except GatewayError:
            if reading:
                raise
            return  # its client left: the followers, abandoned below, make their own call
        except Exception:
            # A fault of the gateway's own (not the upstream's answer): logged with its traceback, and the
            # client and any followers get an error in OpenAI's shape.
            log.exception("the upstream call for %s failed unexpectedly", call.spec.name)
            error = GatewayError(502, "The upstream call failed; retry the request.", code="upstream_call_failed")
            part.fail(error.as_dict())
            if reading:
                raise error from None
            return
        finally:
            if chunks is not None:
                chunks.close()
            part.leave()
        self._finish(response, used, upstream_ms, stored=entry is not None, body=body)

    def _storing(self, response, used, cost, upstream_ms, chunks, body=None):
        """The cache entry to store for the answer (written with the flight's end), or None."""
        call = self.call
        if not call.store or used.name != call.spec.name:
            # Answers from a fallback model are not kept under the requested model's key.
            return None
        entry = CachedCompletion(
            response=response,
            generation=call.generation,
            model=used.name,
            cost=cost,
            upstream_ms=round(upstream_ms, 1),
            chunks=tuple(chunks) if chunks is not None else None,
        )
        if body is not None:
            entry.with_response_json(body)
        return entry

    def _finish(self, response, used, upstream_ms, *, coalesced=False, stored=False, body=None):
        usage = response.get("usage")
        self.result = CompletionResult(
            response=response,
            model=used.name,
            coalesced=coalesced,
            usage=usage,
            cost=used.cost(usage),
            latency_ms=self.call.elapsed_ms(),
            stored=stored,
            fallback=used.name != self.call.spec.name,
            upstream_ms=None if coalesced else round(upstream_ms, 2),
            ratelimit=self._ratelimit(),
            body=body,
            request_id=self.call.request_id,
        )

    def _record(self, outcome=None, error=None):
        """Statistics and the usage hook, once per completion."""
        if self._recorded:
            return
        self._recorded = True
        call, result = self.call, self.result
        if outcome == "error" or result is None:
            stats.record(call.workspace_id, "error", call.elapsed_ms())
            hook.record(call, None, error or GatewayError(500, "The completion failed."))
            return
        outcome = stats.outcome_of(result, call.lookup)
        stats.record(call.workspace_id, outcome, result.latency_ms, result.usage, result.cost)
        hook.record(call, result)
