from assistants.models import Assistant, Conversation
from corporate import pagecache
from corporate.dashboard import panel


@panel(order=20)
def assistants_and_conversations(request):
    """Assistants to ask and your recent conversations (2 queries, none when cached)."""
    user = request.user

    def build():
        assistants = list(Assistant.objects.for_user(user).active().select_related("workspace").order_by("name")[:6])
        recent = list(
            Conversation.objects.of_user(user).select_related("assistant__workspace").order_by("-updated_at")[:6]
        )
        return assistants, recent

    assistants, recent = pagecache.cached("dashboard-assistants", user, build)
    if not assistants and not recent:
        return None
    return {"template": "assistants/_dashboard.html", "assistants": assistants, "recent": recent}
