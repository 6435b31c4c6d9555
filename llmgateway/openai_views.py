"""The OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models.

Plain Django views, not DRF: this is the product's fastest path. A cache hit
costs one store round trip and no database query (statistics are written in
batches, see stats.py).
"""

import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from llmgateway import auth, deferred, gateway, registry
from llmgateway.caching import api_key_key, model_info_key, workspace_info_key
from llmgateway.gateway import CacheControl, CompletionStream, GatewayError
from llmgateway.store import get_store

log = logging.getLogger("llmgateway")


def error_response(error: GatewayError):
    response = JsonResponse(error.body(), status=error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="v1"'
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


def _authenticate(request):
    """The request's KeyInfo; raises GatewayError(401)."""
    token = auth.bearer_token(request.META.get("HTTP_AUTHORIZATION"))
    if token is None:
        raise GatewayError(401, "Send an API key: Authorization: Bearer gw_...", code="invalid_api_key")
    digest = auth.token_hash(token)
    if digest is None:
        raise GatewayError(401, "Invalid API key.", code="invalid_api_key")
    return _resolve_key(digest, get_store().get_many([api_key_key(digest)])[0])


def _read_json(request):
    try:
        return json.loads(request.body)
    except RequestDataTooBig:
        raise GatewayError(413, "The request body is too large.") from None
    except (ValueError, UnicodeDecodeError):
        raise GatewayError(400, "The request body is not valid JSON.") from None
    except RecursionError:
        raise GatewayError(400, "The request body is nested too deeply.") from None


def _sse(first, rest):
    def events():
        try:
            if first is not None:
                yield b"data: " + json.dumps(first, separators=(",", ":")).encode() + b"\n\n"
            for chunk in rest:
                yield b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
        except GatewayError as error:
            yield b"data: " + json.dumps(error.body()).encode() + b"\n\n"
            return
        yield b"data: [DONE]\n\n"

    return events()


def _cache_headers(response, hit, coalesced, result=None):
    response["X-Cache"] = "HIT" if hit else "MISS"
    if coalesced:
        response["X-Cache-Coalesced"] = "1"
    if result is not None:
        # Where the time went, for clients and benchmarks (W3C Server-Timing).
        timing = f"gateway;dur={result.latency_ms:.2f}"
        if result.upstream_ms is not None:
            timing = f"upstream;dur={result.upstream_ms:.2f}, " + timing
        response["Server-Timing"] = timing
    return response


# What this process has learnt, to read everything a hit needs in one round trip:
# a key's workspace (it never changes) and each model's spec (checked against
# the cached spec read in that same round trip).
_key_workspaces = {}
_specs = {}
_MEMO_LIMIT = 10_000


def _remember(memo, key, value):
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def _resolve_key(digest, raw):
    found, info = auth.info_from_cached(raw)
    if not found:
        info = auth.load_key(digest)
    try:
        return auth.check(info, "completions")
    except auth.KeyRejected as exc:
        raise GatewayError(401, str(exc), code="invalid_api_key") from None


@csrf_exempt
def chat_completions(request):
    """POST /v1/chat/completions.

    A hit costs one store round trip: the key's info, the model's spec, the
    workspace's policy and the entry are read together (the entry's key is
    built from the key's workspace and the model spec this process saw last;
    if either turns out different, the lookup is redone).
    """
    if request.method != "POST":
        return error_response(GatewayError(405, "Use POST.", code="method_not_allowed"))
    # Storing the answer and writing statistics wait until the client has its response.
    with deferred.collecting() as after_response:
        try:
            response = _chat_completions(request)
        except Exception:  # an OpenAI-shaped 500, never a traceback page
            log.exception("chat completion failed")
            response = error_response(
                GatewayError(500, "The gateway failed to answer; try again.", code="server_error")
            )
        return deferred.attach(response, after_response)


def _chat_completions(request):
    try:
        token = auth.bearer_token(request.META.get("HTTP_AUTHORIZATION"))
        if token is None:
            raise GatewayError(401, "Send an API key: Authorization: Bearer gw_...", code="invalid_api_key")
        digest = auth.token_hash(token)
        if digest is None:
            raise GatewayError(401, "Invalid API key.", code="invalid_api_key")
        try:
            body, body_error = _read_json(request), None
        except GatewayError as error:
            body, body_error = None, error
        model_name = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None
        name = registry.lookup_name(model_name)
        control = CacheControl.from_header(request.META.get("HTTP_CACHE_CONTROL"))

        guess_workspace, guess_spec, call = _key_workspaces.get(digest), _specs.get(name), None
        keys = [api_key_key(digest), model_info_key(name)]
        if guess_workspace is not None and guess_spec is not None and isinstance(body, dict):
            try:
                call = gateway.prepare(guess_workspace, body, cache_control=control, spec=guess_spec)
                keys += [workspace_info_key(guess_workspace), call.key]
            except GatewayError:
                call = None  # reported below, after the key is checked
        raws = get_store().get_many(keys)

        info = _resolve_key(digest, raws[0])
        _remember(_key_workspaces, digest, info.workspace_id)
        if body_error is not None:
            raise body_error
        if not isinstance(body, dict):
            raise GatewayError(400, "The request body must be a JSON object.")
        found, spec = registry.spec_from_cached(raws[1])
        if not found:
            spec = registry.load(model_name)
        if spec is None:
            raise GatewayError(
                404,
                f"The model {model_name!r} does not exist or is not enabled.",
                code="model_not_found",
                param="model",
            )
        _remember(_specs, name, spec)

        prefetched = None
        if call is not None and spec == guess_spec and info.workspace_id == guess_workspace:
            prefetched = (raws[2], raws[3])
        else:
            call = gateway.prepare(info.workspace_id, body, cache_control=control, spec=spec)
        call.user_id, call.api_key_id = info.user_id, info.id
        outcome = gateway.execute(call, prefetched)
        if isinstance(outcome, CompletionStream):
            chunks = iter(outcome)
            # Pull the first chunk here, so an upstream failure still gets its status code.
            first = next(chunks, None)
            response = StreamingHttpResponse(_sse(first, chunks), content_type="text/event-stream")
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
            return _cache_headers(response, outcome.cache_hit, outcome.coalesced)
    except GatewayError as error:
        return error_response(error)
    response = HttpResponse(
        json.dumps(outcome.response, separators=(",", ":")).encode(), content_type="application/json"
    )
    return _cache_headers(response, outcome.cache_hit, outcome.coalesced, outcome)


@csrf_exempt
def models(request):
    if request.method != "GET":
        return error_response(GatewayError(405, "Use GET.", code="method_not_allowed"))
    try:
        _authenticate(request)
    except GatewayError as error:
        return error_response(error)
    return JsonResponse({"object": "list", "data": model_list()})


def model_list():
    from llmgateway.models import ModelConfig

    configs = list(ModelConfig.objects.for_listing())
    data = [
        {"id": c.name, "object": "model", "created": int(c.created_at.timestamp()), "owned_by": "gateway"}
        for c in configs
    ]
    if (
        registry.BUILTIN_OFFLINE.name not in {c.name for c in configs}
        and not ModelConfig.objects.filter(name=registry.BUILTIN_OFFLINE.name).exists()
    ):
        data.append({"id": registry.BUILTIN_OFFLINE.name, "object": "model", "created": 0, "owned_by": "gateway"})
    return data
