from django.apps import AppConfig


class AssistantsConfig(AppConfig):
    name = "assistants"
    verbose_name = "Assistants"

    def ready(self):
        from assistants import dashboard, signals  # noqa: F401
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
