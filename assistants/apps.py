from django.apps import AppConfig


class AssistantsConfig(AppConfig):
    name = "assistants"
    verbose_name = "Assistants"

    def ready(self):
        from assistants import dashboard, signals  # noqa: F401
