"""The OpenAI-compatible API: POST /v1/chat/completions, /v1/responses, /v1/completions, /v1/embeddings; GET /v1/models.

Plain Django views, not DRF: this is the product's fastest path. A cache hit
costs one store round trip and no database query (statistics are written in
batches, see cache/stats.py), except that each key's cached record is checked
against the database once it is 5 seconds old (one query, see auth.py).
"""

import json
import logging
from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from corporate.middleware import is_database_unavailable
from corporate.views import database_unavailable
from llmgateway import auth, metering, registry
from llmgateway.cache import deferred
from llmgateway.gateway import Completion, GatewayError, entry
from llmgateway.gateway.validation import is_model_name, validate_embedding_fields
from llmgateway.metering import records

log = logging.getLogger("llmgateway")
# One encoder for every answer and streamed chunk: json.dumps with separators builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def error_response(error: GatewayError):
    response = JsonResponse(error.body(), status=error.status)
    if error.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="v1"'
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    for name, value in error.headers.items():
        response[name] = value
    # Every answer names a request, as OpenAI's do: a refusal's or failure's is its usage record's id.
    response.headers._store["x-request-id"] = ("x-request-id", error.request_id or records.new_id())
    return response


def _digest(request):
    """The hash of the request's bearer key; GatewayError(401) when there is none or it is malformed."""
    token = auth.bearer_token(request.META.get("HTTP_AUTHORIZATION"))
    if token is None:
        raise GatewayError(401, "Send an API key: Authorization: Bearer gw_...", code="invalid_api_key")
    digest = auth.token_hash(token)
    if digest is None:
        raise GatewayError(401, "Invalid API key.", code="invalid_api_key")
    return digest


def _raw_body(request):
    try:
        return request.body
    except RequestDataTooBig:
        raise GatewayError(413, "The request body is too large.") from None


def _read_json(request):
    body, error = entry.read_body(_raw_body(request))
    if error is not None:
        raise error
    return body


def _sse(first, rest):
    def events():
        try:
            if first is not None:
                yield b"data: " + _encode(first).encode() + b"\n\n"
            for chunk in rest:
                yield b"data: " + _encode(chunk).encode() + b"\n\n"
        except GatewayError as error:
            yield b"data: " + json.dumps(error.body()).encode() + b"\n\n"
            return
        yield b"data: [DONE]\n\n"

    return events()


class _Answer(HttpResponse):
    """A completion's response; its headers are handed to the server as they are stored.

    Django's `items()` walks a case-insensitive view that looks each header up
    again by its lower-case name (four Python calls a header); with the six
    rate-limit headers a limited key's answer has a dozen headers. It carries
    its Content-Length (the /v1 middleware does not add one): without it the
    server sends the answer chunked, its last chunk in a write of its own
    that the client waits for.
    """

    def __init__(self, body):
        super().__init__(body, content_type="application/json")
        self.headers._store["content-length"] = ("Content-Length", str(len(body)))

    def items(self):
        return self.headers._store.values()


def _cache_headers(response, hit, coalesced, result=None, ratelimit=None, request_id=None):
    # Headers of our own making (lower-case ASCII names, values of hex digits, digits or durations)
    # skip Django's per-header checks (about 8 µs each).
    store = response.headers._store
    if request_id:
        # The usage record's id, as OpenAI's clients read it (`_request_id`).
        store["x-request-id"] = ("x-request-id", request_id)
    if ratelimit:
        # Six headers on every response under limits.
        for name, value in ratelimit.items():
            store[name] = (name, value)
    store["x-cache"] = ("X-Cache", "HIT" if hit else "MISS")
    if coalesced:
        store["x-cache-coalesced"] = ("X-Cache-Coalesced", "1")
    if result is not None:
        # Where the time went, for clients and benchmarks (W3C Server-Timing).
        timing = f"gateway;dur={result.latency_ms:.2f}"
        if result.upstream_ms is not None:
            timing = f"upstream;dur={result.upstream_ms:.2f}, " + timing
        store["server-timing"] = ("Server-Timing", timing)
    return response


def _completion_view(failed):
    """A POST address that asks the gateway for a completion: 405 for other methods, the work deferred
    until the client has its answer, and any failure answered in OpenAI's shape, never a traceback page
    (`failed`: what the log says)."""

    def decorate(view):
        @wraps(view)
        def wrapped(request):
            if request.method != "POST":
                return error_response(
                    GatewayError(405, "Use POST.", code="method_not_allowed", headers={"Allow": "POST"})
                )
            # Storing the answer and writing statistics wait until the client has its response.
            with deferred.collecting() as after_response:
                try:
                    response = view(request)
                except Exception as exc:
                    if is_database_unavailable(exc):
                        # A miss needs the database (the key's or workspace's record): 503 while it is down.
                        response = database_unavailable(request)
                    else:
                        log.exception(failed)
                        error = GatewayError(500, "The gateway failed to answer; try again.", code="server_error")
                        error.request_id = getattr(exc, "request_id", None)  # its usage record's, when it has one
                        response = error_response(error)
                return deferred.attach(response, after_response)

        return csrf_exempt(wrapped)

    return decorate


def _streamed(events, outcome, request_id):
    """A streamed completion's answer: its events unbuffered, with the cache's and the limits' headers."""
    response = StreamingHttpResponse(events, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return _cache_headers(
        response, outcome.cache_hit, outcome.coalesced, ratelimit=metering.headers(outcome.call), request_id=request_id
    )


@_completion_view("chat completion failed")
def chat_completions(request):
    """POST /v1/chat/completions.

    The request as it arrived goes to the gateway's entry point
    (gateway/entry.py), which reads all a hit needs in one round trip.
    """
    try:
        digest = _digest(request)
        try:
            raw = _raw_body(request)
            body, body_error = entry.read_body(raw)
        except GatewayError as error:
            raw, body, body_error = None, None, error
        control = request.META.get("HTTP_CACHE_CONTROL")
        outcome = entry.serve(digest, body, cache_control=control, body_error=body_error, raw=raw)
        if isinstance(outcome, Completion):
            chunks = iter(outcome)
            # Pull the first chunk here, so an upstream failure still gets its status code.
            first = next(chunks, None)
            return _streamed(_sse(first, chunks), outcome, outcome.call.request_id)
    except GatewayError as error:
        return error_response(error)
    body = outcome.body if outcome.body is not None else _encode(outcome.response).encode()
    response = _Answer(body)
    return _cache_headers(
        response, outcome.cache_hit, outcome.coalesced, outcome, outcome.ratelimit, outcome.request_id
    )


@_completion_view("text completion failed")
def completions(request):
    """POST /v1/completions: OpenAI's legacy completions API, answered by chat models (v1/completions.py)."""
    from llmgateway.v1 import completions

    try:
        digest = _digest(request)
        chat, body_error = None, None
        try:
            chat = completions.to_chat(_read_json(request))
        except GatewayError as error:
            body_error = error  # reported once the key is checked
        control = request.META.get("HTTP_CACHE_CONTROL")
        outcome = entry.serve(digest, chat, cache_control=control, body_error=body_error)
        if isinstance(outcome, Completion):
            chunks = (c for c in map(completions.chunk, outcome) if c is not None)
            first = next(chunks, None)
            return _streamed(_sse(first, chunks), outcome, outcome.call.request_id)
    except GatewayError as error:
        return error_response(error)
    answer = outcome.response if outcome.response is not None else json.loads(outcome.body)
    body = _encode(completions.completion(answer)).encode()
    return _cache_headers(
        _Answer(body), outcome.cache_hit, outcome.coalesced, outcome, outcome.ratelimit, outcome.request_id
    )


@_completion_view("response failed")
def responses(request):
    """POST /v1/responses: OpenAI's Responses API, answered through the same gateway (v1/responses.py)."""
    from llmgateway.v1 import responses

    try:
        digest = _digest(request)
        chat, echo, origins, body_error = None, None, None, None
        try:
            chat, echo, origins = responses.to_chat(_read_json(request))
        except GatewayError as error:
            body_error = error  # reported once the key is checked, as a chat request's are
        control = request.META.get("HTTP_CACHE_CONTROL")
        try:
            outcome = entry.serve(digest, chat, cache_control=control, body_error=body_error)
        except GatewayError as error:
            if origins is not None:  # the chat request's refusal, in the Responses request's words
                error = responses.renamed(error, origins)
            raise error from None
        if isinstance(outcome, Completion):
            chunks = iter(outcome)
            first = next(chunks, None)
            request_id = outcome.call.request_id or records.new_id()
            return _streamed(responses.events(first, chunks, echo, request_id, chat.get("model")), outcome, request_id)
    except GatewayError as error:
        return error_response(error)
    request_id = outcome.request_id or records.new_id()
    answer = outcome.response if outcome.response is not None else json.loads(outcome.body)
    body = _encode(responses.response_object(answer, echo, request_id)).encode()
    return _cache_headers(_Answer(body), outcome.cache_hit, outcome.coalesced, outcome, outcome.ratelimit, request_id)


def _readable(view):
    """A GET address: HEAD answers as GET does, headers and Content-Length, without the body; others get 405."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return error_response(
                GatewayError(405, "Use GET.", code="method_not_allowed", headers={"Allow": "GET, HEAD"})
            )
        response = view(request, *args, **kwargs)
        if request.method == "HEAD":
            length = len(response.content)
            response.content = b""
            response["Content-Length"] = str(length)
        return response

    return csrf_exempt(wrapped)


@_readable
def models(request):
    try:
        entry.authenticate(_digest(request))
    except GatewayError as error:
        return error_response(error)
    return _named(JsonResponse({"object": "list", "data": model_list()}))


def _named(response, request_id=None):
    """The response with its x-request-id (a new one unless the request made a usage record)."""
    response.headers._store["x-request-id"] = ("x-request-id", request_id or records.new_id())
    return response


@_readable
def model_detail(request, model):
    """GET /v1/models/<name>: one model of the list, or 404 `model_not_found`."""
    try:
        entry.authenticate(_digest(request))
        for item in model_list():
            if item["id"] == model:
                return _named(JsonResponse(item))
        raise GatewayError(
            404, f"The model {model!r} does not exist or is not enabled.", code="model_not_found", param="model"
        )
    except GatewayError as error:
        return error_response(error)


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


EMBEDDING_MAX_INPUTS = 2048


@csrf_exempt
def embeddings(request):
    """POST /v1/embeddings: vectors from the workspace's embedding models (llmgateway/embeddings.py).

    `model` is a configured model's name, or `local` (also the default when
    LLM_EMBEDDING_MODEL is empty) for the built-in local model; `input` a
    string or a list of strings; `encoding_format` "float" or "base64".
    """
    if request.method != "POST":
        return error_response(GatewayError(405, "Use POST.", code="method_not_allowed", headers={"Allow": "POST"}))
    try:
        return _embeddings(request)
    except GatewayError as error:
        return error_response(error)
    except Exception as exc:  # OpenAI-shaped, never a traceback page
        if is_database_unavailable(exc):
            return database_unavailable(request)
        log.exception("embeddings failed")
        return error_response(GatewayError(500, "The gateway failed to answer; try again.", code="server_error"))


def _check_workspace_open(workspace_id):
    """GatewayError(403) for an archived workspace: its keys make no model calls, as for completions (flight.py)."""
    from llmgateway.cache.entries import workspace_info

    info = workspace_info.get(workspace_id)
    if info is None:
        raise GatewayError(404, "No such workspace.", code="workspace_not_found")
    if info.archived:
        raise GatewayError(403, "This workspace is archived; embeddings are off until an admin restores it.")


def _embeddings(request):
    import base64

    from django.conf import settings

    from llmgateway import embeddings as embedding_models

    key = entry.authenticate(_digest(request))
    _check_workspace_open(key.workspace_id)
    body = _read_json(request)
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.")
    validate_embedding_fields(body)
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if _token_ids(texts):
        raise GatewayError(
            400,
            "`input` holds token ids; the gateway embeds text: send a string or a list of strings "
            "(with LangChain's OpenAIEmbeddings, set check_embedding_ctx_length=False).",
            code="token_input_unsupported",
            param="input",
        )
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise GatewayError(400, "Give `input`: a string or a non-empty list of strings.", param="input")
    if not all(texts):
        raise GatewayError(400, "`input` cannot be an empty string.", param="input")
    if len(texts) > EMBEDDING_MAX_INPUTS:
        raise GatewayError(400, f"At most {EMBEDDING_MAX_INPUTS} inputs per request.", param="input")
    if sum(len(t) for t in texts) > settings.LLM_MAX_INPUT_CHARS:
        raise GatewayError(
            400, f"The input is longer than {settings.LLM_MAX_INPUT_CHARS} characters.", code="input_too_long"
        )
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise GatewayError(400, "encoding_format must be float or base64.", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise GatewayError(400, "dimensions must be a whole number of at least 1.", param="dimensions")
    requested = body.get("model")
    if requested is not None and not isinstance(requested, str):
        raise GatewayError(400, "model must be a string.", param="model")
    if requested and not is_model_name(requested):
        raise GatewayError(400, "model must be a model name.", param="model")
    try:
        for text in texts:
            text.encode()
    except UnicodeEncodeError:
        raise GatewayError(400, "The input is not valid Unicode (it holds a lone surrogate).", param="input") from None
    name = embedding_models.model_name(None) if requested in (None, "") else requested
    if name == embedding_models.LOCAL_NAME:
        name = ""
    try:
        result = embedding_models.embed_for(
            key.workspace_id,
            texts,
            model=name,
            origin="embeddings",
            user_id=key.user_id,
            api_key_id=key.id,
            key_limits=key.limits,
            embedding_only=bool(requested),  # a model named for embeddings must be one (not `offline`)
        )
    except embedding_models.EmbeddingError as exc:
        if exc.refusal is not None:
            raise metering.refused(exc.refusal) from None
        if exc.status == 422:  # a chat model named for embeddings
            raise GatewayError(400, exc.message, code="model_not_embedding", param="model") from None
        code = "model_not_found" if exc.status == 400 else "upstream_error"
        raise GatewayError(404 if exc.status == 400 else exc.status, exc.message, code=code, param="model") from None
    vectors = result.vectors
    if dimensions is not None:
        vectors = _shortened(vectors, dimensions)
    data = []
    for index, vector in enumerate(vectors):
        value = base64.b64encode(vector.astype("<f4").tobytes()).decode() if encoding == "base64" else vector.tolist()
        data.append({"object": "embedding", "index": index, "embedding": value})
    reported = result.input_tokens if result.input_tokens is not None else result.tokens
    usage = {"prompt_tokens": reported, "total_tokens": reported}
    response = JsonResponse({"object": "list", "data": data, "model": requested or result.model, "usage": usage})
    response["X-Cache"] = "HIT" if result.cached else "MISS"
    for header, value in (result.ratelimit or {}).items():
        response[header] = value
    return _named(response, getattr(result, "request_id", None))


def _token_ids(texts):
    """Whether an embeddings `input` is token ids (a list of integers, or a list of such lists)."""
    if not isinstance(texts, list) or not texts:
        return False
    rows = texts if all(isinstance(t, list) for t in texts) else [texts]
    return all(row and all(isinstance(i, int) and not isinstance(i, bool) for i in row) for row in rows)


def _shortened(vectors, dimensions):
    """Unit vectors cut to their first `dimensions` numbers and made unit length again (OpenAI's `dimensions`).

    What OpenAI does for its text-embedding-3 models; the local model is trained the same way (Matryoshka).
    GatewayError(400) when the model's vectors are shorter.
    """
    import numpy

    available = int(vectors.shape[1]) if len(vectors.shape) == 2 else 0
    if dimensions > available:
        raise GatewayError(
            400, f"dimensions must be at most {available} for this model.", param="dimensions", code="invalid_value"
        )
    if dimensions == available:
        return vectors
    cut = vectors[:, :dimensions]
    norms = numpy.linalg.norm(cut, axis=1, keepdims=True)
    return cut / numpy.where(norms == 0, 1, norms)
