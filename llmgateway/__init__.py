"""The model gateway: every completion of the platform goes through it.

Python API for other apps (documented in full in `llmgateway/gateway/__init__.py`):

    from llmgateway import gateway

    result = gateway.complete(workspace, {"messages": [...]}, cache_extra={"assistant": 7, "version": 3})
    result.response, result.text, result.cache_hit, result.coalesced, result.usage, result.cost, result.latency_ms

    stream = gateway.stream(workspace, {"messages": [...]})   # chat.completion.chunk dicts
    for chunk in stream: ...
    stream.result                                             # the CompletionResult, once exhausted

Errors are `gateway.GatewayError` (status, OpenAI-shaped `body()`). Passages
for the built-in `offline` model: `providers/offline.py`. Usage accounting and
limits attach to `usage.hook` (see usage.py).

The folder, by concern:
- gateway/: the Python API above; validation, errors, cache controls, the
  flight (hit, coalesced follow, or lead and store, for streamed and whole
  answers alike) and the entry point of /v1 requests;
- cache/: the cache engine (store, entries and their keys, read-through
  records, coalescing, statistics, work deferred until after the response);
- providers/: the upstreams (offline, OpenAI-compatible), the one HTTP choke
  point, deadlines, retries, the circuit breaker and fallbacks;
- keys: workspace API keys (models.py `ApiKey`, auth.py: checked through the
  cache, usable by the whole REST API);
- APIs: the OpenAI-compatible API at /v1/ (v1/) and the REST API under
  /api/gateway/ (api.py);
- pages under /gateway/ (views.py, forms.py, templates/), the admin and
  management commands.
"""
