"""Metering: usage records, limits and budgets on every completion (the gateway's usage hook).

`Meter` is the default LLM_USAGE_HOOK (llmgateway/usage.py):

- `admit(call, hit, workspace)` finds the scopes with limits (the
  workspace's, the user's, the API key's: read with the workspace's and the
  key's cached records, so no extra read) and, only when there are some,
  reserves the request in one atomic step (limits.py), or refuses it with a
  429 GatewayError naming the limit, with Retry-After and the OpenAI
  rate-limit headers. A refused request is recorded too.
- `record(call, result, error)` settles the reservation with what was used,
  sends a budget alert when a budget passes 80% or 100% (alerts.py), and
  buffers the usage record (records.py).

Embeddings (`/v1/embeddings`, retrieval, ingestion) meet the same limits
through embedding.py.
"""

import math
import time

from django.conf import settings

from llmgateway.cache import deferred, stats
from llmgateway.cache.memo import BoundedMemo
from llmgateway.gateway.errors import GatewayError
from llmgateway.metering import alerts, limits, records


def refused(refusal):
    """The 429 GatewayError of a limits.Refusal: OpenAI's shape, naming the limit, with Retry-After."""
    kind = "insufficient_quota" if refusal.code == "insufficient_quota" else refusal.limit
    return GatewayError(
        429,
        refusal.message(),
        code=refusal.code,
        type="requests" if kind == "concurrent" else kind,
        retry_after=refusal.retry_after,
        headers=limits.refusal_headers(refusal),
        limit=refusal,
    )


def _prompt_tokens(call):
    """About how many tokens the request's messages are (4 characters a token, 8 more a message)."""
    return _request_tokens(call.request)


def _request_tokens(request):
    chars = 0
    for message in request.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(part.get("text") or "") for part in content if isinstance(part, dict))
    return math.ceil(chars / 4) + 8 * len(request.get("messages") or ())


def estimate(call):
    """(tokens, micro-dollars) reserved before the upstream call: the input, and the answers at their longest.

    With `n` the upstream writes n answers, each up to max_tokens.
    """
    prompt = _prompt_tokens(call)
    answer = call.request.get("max_completion_tokens") or call.request.get("max_tokens")
    if not isinstance(answer, int) or answer <= 0:
        answer = settings.USAGE_ESTIMATE_MAX_TOKENS
    choices = call.request.get("n")
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        answer *= choices  # each of the n answers may be that long
    cost = call.spec.cost({"prompt_tokens": prompt, "completion_tokens": answer})
    return prompt + answer, math.ceil(cost * 1_000_000)


def _answer_chars(response):
    chars = 0
    choices = response.get("choices") if isinstance(response, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            chars += len(message["content"])
        for tool_call in message.get("tool_calls") or ():
            function = tool_call.get("function") if isinstance(tool_call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                chars += len(function["arguments"])
    return chars


def counted_usage(call, result):
    """(prompt tokens, completion tokens, cost in dollars) of an answer.

    As the upstream reported them; an upstream that reported no token counts
    (a server that ignores `stream_options.include_usage`, or sends none)
    is counted from the request and the answer's text, 4 characters a token,
    so its answers still spend the budgets and limits.
    """
    prompt, completion = _tokens(result.usage)
    if prompt or completion:
        return prompt, completion, result.cost
    prompt, completion = _prompt_tokens(call), math.ceil(_answer_chars(result.response) / 4)
    return prompt, completion, call.spec.cost({"prompt_tokens": prompt, "completion_tokens": completion})


def estimated_usage(request, response):
    """A usage object for an answer whose upstream counted no tokens, from the text (4 characters a token)."""
    prompt, completion = _request_tokens(request), math.ceil(_answer_chars(response) / 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def counted(usage):
    """Whether a usage object counts any tokens (an upstream's may be missing, malformed or all zeros)."""
    return any(_tokens(usage))


def _tokens(usage):
    if not isinstance(usage, dict):
        return 0, 0
    counts = []
    for name in ("prompt_tokens", "completion_tokens"):
        value = usage.get(name)
        counts.append(value if isinstance(value, int) and value > 0 else 0)
    return counts


class Meter:
    def __init__(self):
        # The scopes found for each (workspace, user, key) last time, to reserve the next request
        # of the same key in its lookup's round trip (`ahead`).
        self._scopes = BoundedMemo()

    def ahead(self, workspace_id, user_id, api_key_id, deadline_seconds):
        """A reservation to make with the cache lookup (limits.Ahead), or None (no limits known for these)."""
        if settings.USAGE_HITS_COUNT_TOWARDS_SPEND:
            return None  # a hit reserves its estimate too: the lookup must be read first
        known = self._scopes.get((workspace_id, user_id, api_key_id))
        if known is None or not known[2]:
            return None
        return limits.ahead(known[2], records.new_id(), deadline_seconds)

    def _scopes_of(self, call, workspace_limits):
        """The call's scopes; the same list as last time while its limits are the same (parsed) objects."""
        memo = (call.workspace_id, call.user_id, call.api_key_id)
        known = self._scopes.get(memo)
        # Cached records are parsed once per process (cache/records.py): unchanged limits are the same dicts.
        if known is not None and known[0] is workspace_limits and known[1] is call.key_limits:
            return known[2]
        scopes = limits.scopes_for(call.workspace_id, call.user_id, call.api_key_id, workspace_limits, call.key_limits)
        if known is not None and known[2] == scopes:
            scopes = known[2]  # the same scopes: the reservation made ahead with them stands
        self._scopes.put(memo, (workspace_limits, call.key_limits, scopes))
        return scopes

    def admit(self, call, hit=False, workspace=None):
        scopes = self._scopes_of(call, getattr(workspace, "limits", None))
        reserved, call.ahead = call.ahead, None
        if reserved is not None and (
            reserved.reply is None or (reserved.scopes is not scopes and reserved.scopes != scopes)
        ):
            reserved.undo()  # guessed wrong (limits changed): admitted from scratch below
            reserved = None
        call.request_id = reserved.request_id if reserved is not None else records.new_id()
        if not scopes:
            return None
        spends = not hit or settings.USAGE_HITS_COUNT_TOWARDS_SPEND
        tokens, cost = estimate(call) if spends else (0, 0)
        try:
            if reserved is None:
                call.ticket = limits.admit(scopes, call.request_id, tokens, cost, call.deadline.remaining())
            else:
                call.ticket = reserved.ticket()
                if tokens or cost:
                    call.ticket = reserved.top_up(tokens, cost, call.deadline.remaining())
        except limits.Refusal as refusal:
            self._add(call, "refused", 429)
            error = refused(refusal)
            error.request_id = call.request_id
            raise error from None
        return call.ticket

    def record(self, call, result, error=None):
        ticket = getattr(call, "ticket", None)
        if result is not None:
            spent = not (result.cache_hit or result.coalesced) or settings.USAGE_HITS_COUNT_TOWARDS_SPEND
            if spent:
                prompt, completion, dollars = counted_usage(call, result)
            else:
                (prompt, completion), dollars = _tokens(result.usage), 0
            cost = math.ceil(dollars * 1_000_000) if spent else 0
            tokens = prompt + completion if spent else 0
            if ticket is not None and (tokens != ticket.tokens or cost != ticket.cost or limits.holds(ticket.scopes)):
                if ticket.tight():
                    # Now, before the answer goes back: a client that asks again at once must find what was
                    # spent, not the estimate that would refuse it (a budget or the tokens a minute near their end).
                    self._settle(call, ticket, tokens, cost)
                else:
                    # After the response when in a view (cache/deferred.py): the client does not wait for it.
                    # (A hit's reservation, without a concurrency slot, has nothing to settle.)
                    deferred.defer(self._settle, call, ticket, tokens, cost)
            outcome = stats.outcome_of(result, call.lookup)
            self._add(call, outcome, 200, result.model, prompt, completion, cost, result.latency_ms)
            return
        # Failed or cancelled: an upstream error costs nothing; a cancelled call keeps its reservation.
        status = getattr(error, "status", 499)
        if ticket is not None:
            if status == 499:
                limits.settle(ticket, ticket.tokens, ticket.cost)
            else:
                limits.settle(ticket, 0, 0)
        request_id = self._add(call, "error", status)
        if hasattr(error, "request_id") and not error.request_id:
            error.request_id = request_id  # the x-request-id of the answer: this record's

    def _settle(self, call, ticket, tokens, cost):
        for scope, kind, spent, budget in limits.settle(ticket, tokens, cost):
            if spent >= budget * alerts.FIRST_THRESHOLD:
                alerts.maybe_send(call.workspace_id, scope, kind, spent, budget)

    def _add(self, call, outcome, status, model=None, prompt=0, completion=0, cost=0, latency_ms=None):
        # A tuple in records.FIELDS's order, encoded with the others when they are flushed.
        request_id = getattr(call, "request_id", None) or records.new_id()
        records.add(
            (
                request_id,
                call.workspace_id,
                call.user_id,
                call.api_key_id,
                call.assistant_id,
                call.origin,
                model or call.spec.name,
                prompt,
                completion,
                cost,
                outcome,
                status,
                call.elapsed_ms() if latency_ms is None else latency_ms,
                time.time(),
            )
        )
        return request_id


def headers(call):
    """The x-ratelimit-* headers for an admitted call ({} without limits)."""
    ticket = getattr(call, "ticket", None)
    return ticket.headers() if ticket is not None else {}
