from django.apps import AppConfig


class LlmgatewayConfig(AppConfig):
    name = "llmgateway"
    verbose_name = "Model gateway"

    def ready(self):
        from llmgateway import schema, signals  # noqa: F401
