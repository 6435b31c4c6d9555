"""The usage hook: the one place where accounting and limits attach to the request path.

Every completion, whether hit, coalesced or miss, and whether it comes from
/v1/, the REST API or another app's `llmgateway.complete()`, calls

    usage.hook.admit(call)          before the cache lookup; raise
                                    GatewayError(429, ...) to refuse the request
    usage.hook.record(call, result) after the answer is known (result is a
                                    CompletionResult: usage, cost, cache_hit ...)

`call` carries workspace_id, api_key_id, user_id, model name and the request.
The default hook does nothing, so it costs nothing on a cache hit. Install
another with the LLM_USAGE_HOOK setting (a dotted path to a class or an
object with these two methods). Keep `admit` free of database queries: a hit
must not touch the database (count in the cache, settle in a task).
"""

from django.conf import settings
from django.utils.module_loading import import_string


class UsageHook:
    def admit(self, call):
        return None

    def record(self, call, result):
        return None


def _load():
    path = getattr(settings, "LLM_USAGE_HOOK", "")
    if not path:
        return UsageHook()
    obj = import_string(path)
    return obj() if isinstance(obj, type) else obj


class _Lazy:
    _hook = None

    def _get(self):
        if self._hook is None:
            self._hook = _load()
        return self._hook

    def admit(self, call):
        return self._get().admit(call)

    def record(self, call, result):
        return self._get().record(call, result)


hook = _Lazy()
