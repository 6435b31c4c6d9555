"""OpenAPI description of workspace API keys (loaded by the app config)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "llmgateway.auth.ApiKeyAuthentication"
    name = "workspaceApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "gw_…",
            "description": "A workspace API key with the read (GET) or write scope.",
        }
