from django.apps import AppConfig


class CorporateConfig(AppConfig):
    name = "corporate"
    verbose_name = "Accounts"

    def ready(self):
        from corporate import signals  # noqa: F401
