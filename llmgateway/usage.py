"""The usage hook: the one place where accounting and limits attach to the request path.

Every completion, whether hit, coalesced or miss, and whether it comes from
/v1/, the REST API or another app's `llmgateway.complete()`, calls

    usage.hook.admit(call, hit, workspace)
                                    once the cache entry has been read (hit: whether it
                                    answers the call) and before it is used; raise
                                    GatewayError(429, ...) to refuse the request
    usage.hook.record(call, result, error=None)
                                    once the answer is known (result is a
                                    CompletionResult: usage, cost, cache_hit ...), or
                                    with result None and the GatewayError (None: the
                                    client left) when there is none
    usage.hook.ahead(workspace_id, user_id, api_key_id, deadline_seconds)
                                    optional: a reservation (metering.limits.Ahead) that
                                    the /v1 entry point makes in the same round trip as
                                    the cache lookup; `admit` then finds it as call.ahead

`call` carries workspace_id, api_key_id, user_id, assistant_id, origin, the
model spec, the request and the key's limits; `workspace` is the cached
WorkspaceInfo (its limits). The default hook is llmgateway.metering.Meter:
usage records, limits and budgets (see there). `UsageHook` does nothing.
Install another with the LLM_USAGE_HOOK setting (a dotted path to a class or
an object with these two methods). Keep `admit` free of database queries: a
hit must not touch the database (count in the store, write rows in bulk).
"""

from django.conf import settings
from django.utils.module_loading import import_string


class UsageHook:
    def admit(self, call, hit=False, workspace=None):
        return None

    def record(self, call, result, error=None):
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

    def admit(self, call, hit=False, workspace=None):
        return self._get().admit(call, hit, workspace)

    def record(self, call, result, error=None):
        return self._get().record(call, result, error)

    def ahead(self, workspace_id, user_id, api_key_id, deadline_seconds):
        """A reservation the hook wants made in the cache lookup's round trip (optional method), or None."""
        method = getattr(self._get(), "ahead", None)
        return method(workspace_id, user_id, api_key_id, deadline_seconds) if method is not None else None

    def reset(self):
        self._hook = None


hook = _Lazy()
