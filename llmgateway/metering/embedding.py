"""Limits on embeddings: the same scopes, counters and refusals as completions (limits.py).

Who asks decides how an embedding counts:

- "embeddings" (`/v1/embeddings`, a client's own request): a request like a
  completion. Admitted before the upstream call with its estimate (the
  texts not in the cache; none when every vector is cached, unless
  setting USAGE_HITS_COUNT_TOWARDS_SPEND: a cached vector costs nothing), refused with a 429 naming the limit,
  settled with what was used.
- "retrieval" (the question of a chat turn, embedded to search by meaning):
  part of the turn, which counts as the request; its tokens and cost are
  reserved and settled, and it is refused when the tokens per minute or a
  budget is used up, as the turn's answer would be.
- "ingestion" (the passages of an uploaded document): never refused, since
  a document must become searchable, but what it spent is added to the
  uploader's and the workspace's tokens and budgets, so later requests see it.
"""

from llmgateway.metering import alerts, limits, records

REQUEST = "request"  # counted and refused like a completion
PART = "part"  # tokens and cost only, refused when they are used up
CHARGE = "charge"  # added up afterwards, never refused
POLICIES = {"embeddings": REQUEST, "retrieval": PART, "ingestion": CHARGE}


def _metered():
    from llmgateway import usage

    return type(usage.hook._get()) is not usage.UsageHook


def scopes(workspace_id, user_id, api_key_id, key_limits):
    """The scopes with limits for an embedding call (the workspace's limits from its cached record)."""
    from llmgateway.cache.entries import workspace_info

    info = workspace_info.get(workspace_id)
    return limits.scopes_for(workspace_id, user_id, api_key_id, getattr(info, "limits", None), key_limits)


def admit(origin, workspace_id, user_id, api_key_id, key_limits, tokens, cost, deadline_seconds=60):
    """A Ticket for the call (None: no limits, or charged afterwards), or limits.Refusal raised.

    tokens, cost: the estimate of the texts to embed upstream (0 when all are cached).
    """
    policy = POLICIES.get(origin, REQUEST)
    if not _metered():
        return None
    found = scopes(workspace_id, user_id, api_key_id, key_limits)
    if not found:
        return None
    if policy == CHARGE:
        # Nothing reserved: settle() adds what was used to the counters.
        day, month, _, _ = limits.periods()
        return limits.Ticket(found, records.new_id(), 0, 0, day, month)
    if not tokens and policy == PART:
        return None  # every vector cached, and not a request of its own: nothing to count
    requests = 1 if policy == REQUEST else 0
    return limits.admit(found, records.new_id(), tokens, cost, deadline_seconds, requests=requests)


def settle(workspace_id, ticket, tokens, cost):
    """Replace the ticket's reservation by what was used (0, 0 after a failure); budget alerts as for completions."""
    if ticket is None:
        return
    for scope, kind, spent, budget in limits.settle(ticket, tokens, cost):
        if spent >= budget * alerts.FIRST_THRESHOLD:
            alerts.maybe_send(workspace_id, scope, kind, spent, budget)
