from django.apps import AppConfig


class LlmgatewayConfig(AppConfig):
    name = "llmgateway"
    verbose_name = "Model gateway"

    def ready(self):
        from llmgateway import schema, signals  # noqa: F401
        from workspaces.navigation import tab

        tab(
            "gateway",
            "Model gateway",
            "llmgateway:workspace",
            order=40,
            description="Models, API keys and cache statistics.",
        )
        tab("gateway-models", "Models", "llmgateway:models", parent="gateway", order=1)
        tab("gateway-keys", "API keys", "llmgateway:keys", action="manage_keys", parent="gateway", order=2)
        tab("gateway-cache", "Cache", "llmgateway:cache", action="view_usage", parent="gateway", order=3)
