"""What is left of the limits that apply to a person (and their key): for the Usage pages, the API and chat."""

from llmgateway.cache.entries import workspace_info
from llmgateway.metering import limits

LABELS = {
    "rpm": "Requests per minute",
    "tpm": "Tokens per minute",
    "max_concurrent": "Concurrent requests",
    "daily_budget": "Budget today (USD)",
    "monthly_budget": "Budget this month (USD)",
}


def for_user(workspace, user, key_info=None):
    """[{"scope", "label", "items": [{"name", "label", "limit", "used", "left", "resets_in", "percent"}]}]."""
    info = workspace_info.get(workspace.pk)
    scopes = limits.scopes_for(
        workspace.pk,
        user.pk if user is not None else None,
        getattr(key_info, "id", None),
        getattr(info, "limits", None),
        getattr(key_info, "limits", None),
    )
    out = []
    for scope in scopes:
        state = limits.state_of(scope)
        items = []
        for name in limits.NAMES:
            if name not in state:
                continue
            entry = state[name]
            left = max(entry["limit"] - entry["used"], 0)
            items.append(
                {
                    "name": name,
                    "label": LABELS[name],
                    "limit": entry["limit"],
                    "used": entry["used"],
                    "left": round(left, 4) if isinstance(left, float) else left,
                    "resets_in": entry["resets_in"],
                    "resets_at": entry.get("resets_at"),
                    "percent": min(100, round(100 * entry["used"] / entry["limit"])) if entry["limit"] else 100,
                }
            )
        out.append({"scope": scope.kind, "label": limits.SCOPE_WORDS[scope.kind].capitalize(), "items": items})
    return out
