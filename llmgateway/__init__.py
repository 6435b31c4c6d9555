"""The model gateway: every completion of the platform goes through it.

Python API for other apps (documented in full in `llmgateway/gateway.py`):

    from llmgateway import gateway

    result = gateway.complete(workspace, {"messages": [...]}, cache_extra={"assistant": 7, "version": 3})
    result.response, result.text, result.cache_hit, result.coalesced, result.usage, result.cost, result.latency_ms

    stream = gateway.stream(workspace, {"messages": [...]})   # chat.completion.chunk dicts
    for chunk in stream: ...
    stream.result                                             # the CompletionResult, once exhausted

Errors are `gateway.GatewayError` (status, OpenAI-shaped `body()`). Passages
for the built-in `offline` model: `providers/offline.py`. Usage accounting and
limits attach to `usage.hook` (see usage.py).

Also here: the OpenAI-compatible API at /v1/ (openai_views.py), workspace API
keys (auth.py, usable by the whole REST API), the completion cache
(caching.py), coalescing (coalesce.py), statistics (stats.py), providers
(providers/), pages under /gateway/ and the REST API under /api/gateway/.
"""
