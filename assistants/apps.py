from django.apps import AppConfig


class AssistantsConfig(AppConfig):
    name = "assistants"
    verbose_name = "Assistants"

    def ready(self):
        from assistants import dashboard  # noqa: F401
        from assistants.models import Assistant, Conversation, Message
        from corporate import pagecache
        from workspaces.navigation import tab

        tab(
            "assistants",
            "Assistants",
            "assistants:list",
            order=30,
            description="Ask questions answered from your documents, with sources.",
        )
        tab(
            "assistants-list",
            "All assistants",
            "assistants:list",
            parent="assistants",
            order=1,
            current=("assistants:list", "assistants:create", "assistants:edit"),
        )
        tab("assistants-usage", "Usage", "assistants:usage", action="view_usage", parent="assistants", order=2)

        # What the dashboard shows: assistants, and each user's recent conversations (corporate.pagecache).
        pagecache.invalidate_on_write(Assistant, workspace=lambda a: a.workspace_id)
        pagecache.invalidate_on_write(Conversation, user=lambda c: c.user_id)
        pagecache.invalidate_on_write(Message, user=_conversation_user, created_only=True)


def _conversation_user(message):
    """The conversation's user when the message carries its conversation (a new turn does), else None."""
    from assistants.models import Message

    if Message.conversation.is_cached(message):
        return message.conversation.user_id
    return None
