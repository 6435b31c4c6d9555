from assistants.models import Assistant, Conversation
from corporate.dashboard import panel


@panel(order=20)
def assistants_and_conversations(request):
    """Assistants to ask and your recent conversations (2 queries)."""
    assistants = list(
        Assistant.objects.for_user(request.user).active().select_related("workspace").order_by("name")[:6]
    )
    recent = list(
        Conversation.objects.of_user(request.user).select_related("assistant__workspace").order_by("-updated_at")[:6]
    )
    if not assistants and not recent:
        return None
    return {"template": "assistants/_dashboard.html", "assistants": assistants, "recent": recent}
