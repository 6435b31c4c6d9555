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
- user, assistant, origin: who asked, for which assistant, from where
  ("chat", "v1", ...): for the usage records and the user's limits.

Upstream faults come back as GatewayError with an OpenAI error body
(`error.body()`) and the right status (400/404/429/502/503/504). Every
request is over by its deadline (LLM_DEADLINE_SECONDS, or the model's own),
retries and fallbacks included: then a 504 `deadline_exceeded`, also as the
last event of a stream that had started.

Input is capped: LLM_MAX_MESSAGES messages and LLM_MAX_INPUT_CHARS characters
of message content per request (400 `too_many_messages` / `input_too_long`).

Passages for the offline model: see providers/offline.py.
"""

from llmgateway.gateway.controls import CacheControl
from llmgateway.gateway.errors import GatewayError
from llmgateway.gateway.flight import Call, Completion, CompletionResult, prepare, release_database
from llmgateway.gateway.validation import validate_request

# A streamed completion is a Completion iterated for its chunks.
CompletionStream = Completion


def complete(workspace, request, *, stream=False, **options):
    """A completion through the cache; a CompletionResult, or a Completion to iterate when stream=True.

    options: prepare()'s keywords (cache_control, user, cache_extra, api_key,
    spec, assistant, origin). `api_key` and `spec` are for the gateway's own
    views (an authenticated key's info, a model spec already read from the cache).
    """
    request = dict(request)
    if stream:
        request["stream"] = True
    return execute(prepare(workspace, request, **options))


def execute(call, prefetched=None):
    """Run a prepared Call: a CompletionResult, or a Completion to iterate for a streaming request."""
    completion = Completion(call, prefetched)
    return completion if call.streaming else completion.whole()


def stream(workspace, request, **kwargs):
    """complete(..., stream=True): a Completion to iterate."""
    return complete(workspace, request, stream=True, **kwargs)


__all__ = [
    "CacheControl",
    "Call",
    "Completion",
    "CompletionResult",
    "CompletionStream",
    "GatewayError",
    "complete",
    "execute",
    "prepare",
    "release_database",
    "stream",
    "validate_request",
]
