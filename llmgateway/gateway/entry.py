"""The one entry point of the OpenAI-compatible API: a request as it arrives, to a completion.

    completion = serve(digest, body, cache_control="no-cache")

`digest` is the hash of the bearer token (`auth.token_hash`), `body` the
parsed JSON (or the GatewayError met reading it, reported after the key is
checked: a client without a valid key learns nothing about its body), and
`cache_control` the Cache-Control header. The answer is what `execute()`
gives: a CompletionResult, or a Completion to iterate for a streaming
request.

A cache hit costs one store round trip: the key's record, the model's spec,
the workspace's policy and the cache entry are read together, and the key's
limits (when it has some) are checked and counted in the same round trip
(metering.limits.Ahead). The entry's
key depends on the key's workspace and the model's spec, which this process
remembers from earlier requests (a key's workspace never changes; a spec is
checked against the one read in the same round trip); when a guess turns
out wrong or is missing, the lookup is simply redone by `execute()`.
"""

import json

from llmgateway import auth, registry
from llmgateway.cache.entries import api_key_key, model_info_key, workspace_info_key
from llmgateway.cache.memo import BoundedMemo
from llmgateway.cache.store import get_store
from llmgateway.gateway.errors import GatewayError, bad_request
from llmgateway.gateway.flight import Call, prelock, prepare
from llmgateway.gateway.validation import is_model_name
from llmgateway.metering import limits
from llmgateway.usage import hook

key_owners = BoundedMemo()  # key digest -> (workspace id, user id, key id)
model_specs = BoundedMemo()  # model name as asked -> ModelSpec

# Request bodies repeat (that is what the cache is for): a body seen before is neither parsed
# nor validated nor hashed again. Keyed by its bytes, so never stale; small bodies only.
MEMO_BODY_MAX = 16 * 1024
# Deepest nesting of arrays and objects a body may have. Python's JSON parser stops near 1,000
# levels, but what walks the body afterwards (the cache key, the upstream call's encoder) recurses
# with a deeper stack; real requests (tool schemas included) stay far below this.
MAX_BODY_DEPTH = 64
parsed_bodies = BoundedMemo(limit=256)  # raw body -> parsed JSON
prepared_calls = BoundedMemo(limit=256)  # (raw body, Cache-Control, workspace, spec) -> (request, key, control)


def read_body(raw):
    """(parsed JSON, None) or (None, the GatewayError to report) for a request body's bytes."""
    memo = raw is not None and len(raw) <= MEMO_BODY_MAX
    body = parsed_bodies.get(raw) if memo else None
    if body is not None:
        return body, None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None, GatewayError(400, "The request body is not valid JSON.")
    except RecursionError:
        return None, _nested_too_deeply()
    if isinstance(body, dict | list) and _too_deep(raw, body):
        return None, _nested_too_deeply()
    if memo and isinstance(body, dict):
        parsed_bodies.put(raw, body)
    return body, None


def _nested_too_deeply():
    return GatewayError(400, f"The request body is nested too deeply (at most {MAX_BODY_DEPTH} levels).")


def _too_deep(raw, body):
    """Does the parsed body nest arrays and objects deeper than MAX_BODY_DEPTH?"""
    if raw.count(b"[") + raw.count(b"{") <= MAX_BODY_DEPTH:
        return False  # not enough brackets to nest that deep (the common case: no walk)
    level = [body]
    for _ in range(MAX_BODY_DEPTH):
        below = []
        for value in level:
            # json.loads makes plain dicts and lists only: exact type tests are the cheapest here.
            for child in value.values() if type(value) is dict else value:
                if type(child) in _CONTAINERS:
                    below.append(child)
        if not below:
            return False
        level = below
    return True


_CONTAINERS = (dict, list)


def _prepare(workspace_id, body, cache_control, spec, raw):
    """(call, seen): prepare(), remembered for a body seen before (the validated request and its cache key are
    shared, unchanged); seen tells whether this process had prepared the same call before (a likely hit).
    """
    if raw is None or len(raw) > MEMO_BODY_MAX:
        return prepare(workspace_id, body, cache_control=cache_control, spec=spec), False
    memo_key = (raw, cache_control, workspace_id, spec)
    found = prepared_calls.get(memo_key)
    if found is None:
        call = prepare(workspace_id, body, cache_control=cache_control, spec=spec)
        prepared_calls.put(memo_key, (call.request, call.key, call.control))
        return call, False
    request, key, control = found
    return Call(workspace_id=workspace_id, request=request, spec=spec, key=key, control=control), True


def key_info(digest, raw, scope="completions"):
    """The KeyInfo behind a token's digest, from its cached record (raw) or the database; GatewayError(401)."""
    found, info = auth.info_from_cached(raw, digest)
    if not found:
        info = auth.load_key(digest)
    try:
        return auth.check(info, scope)
    except auth.KeyRejected as exc:
        raise GatewayError(401, str(exc), code="invalid_api_key") from None


def authenticate(digest, scope="completions"):
    """The KeyInfo for a token's digest (one store read); GatewayError(401)."""
    return key_info(digest, get_store().get_many([api_key_key(digest)])[0], scope)


def serve(digest, body, cache_control=None, body_error=None, raw=None):
    """A completion for an API request: a CompletionResult, or a Completion for a streaming one.

    raw: the body's bytes when `body` was parsed from them (`read_body`): a body seen before is not prepared again.
    """
    model_name = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
    if model_name is not None and not is_model_name(model_name):
        # Not a name any model can have (NUL, a lone surrogate): never looked up; refused once the key is checked.
        body_error = body_error or bad_request("model must be a model name.", "model")
        model_name = None
    name = registry.lookup_name(model_name)

    owner, guess_spec, call, ahead, lock = key_owners.get(digest), model_specs.get(name), None, None, None
    guess_workspace = owner[0] if owner is not None else None
    keys = [api_key_key(digest), model_info_key(name)]
    # A call this process has prepared before is likely a hit: its reply is waited for through the event loop,
    # like every hit's (RedisStore._pipe). A new one is likely a miss, which goes on to the upstream at once.
    seen = True
    if guess_workspace is not None and guess_spec is not None and isinstance(body, dict):
        try:
            call, seen = _prepare(guess_workspace, body, cache_control, guess_spec, raw)
            keys += [workspace_info_key(guess_workspace), call.key]
        except GatewayError:
            call = None  # reported below, after the key is checked
    if call is not None:
        # The key's limits, reserved in the same round trip as the lookup (metering.limits.Ahead).
        ahead = hook.ahead(*owner, call.deadline.remaining())
    if ahead is not None:
        raws = limits.lookup_and_admit(keys, ahead, settle=seen)
    else:
        # A miss takes its coalescing lock in the same round trip (flight.prelock).
        lock = prelock(call) if call is not None else None
        raws = get_store().lookup(keys, lock.command() if lock is not None else None, settle=seen)
        if lock is not None:
            lock.found(raws[4])
    try:
        return _serve(
            digest, body, cache_control, body_error, model_name, name, raws, call, guess_spec, ahead, lock, raw
        )
    except BaseException:
        if ahead is not None and not ahead.done:
            ahead.undo()  # refused before its limits were checked: the request is given back
        if lock is not None:
            lock.release()  # not used: given back (nothing when the completion took it over)
        raise


def _serve(digest, body, cache_control, body_error, model_name, name, raws, call, guess_spec, ahead, lock, raw):
    from llmgateway.gateway import execute

    info = key_info(digest, raws[0])
    key_owners.put(digest, (info.workspace_id, info.user_id, info.id))
    if body_error is not None:
        raise body_error
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.")
    found, spec = registry.spec_from_cached(raws[1], name)
    if not found:
        spec = registry.load(model_name)
    if spec is None:
        raise GatewayError(
            404, f"The model {model_name!r} does not exist or is not enabled.", code="model_not_found", param="model"
        )
    model_specs.put(name, spec)

    prefetched = None
    if call is not None and spec == guess_spec and info.workspace_id == call.workspace_id:
        prefetched = (raws[2], raws[3], lock)
    else:
        if lock is not None:
            lock.release()  # taken for a guess that was wrong
        call = _prepare(info.workspace_id, body, cache_control, spec, raw)[0]
    call.user_id, call.api_key_id, call.key_limits, call.origin = info.user_id, info.id, info.limits, "v1"
    call.ahead = ahead
    return execute(call, prefetched)
