"""Model providers: one module each, behind the interface in base.py."""

from llmgateway.providers.base import Provider, ProviderError


def provider_for(spec) -> Provider:
    """The provider instance for a configured model (registry.ModelSpec)."""
    if spec.provider == "openai-compatible":
        from llmgateway.providers.openai_compat import OpenAICompatibleProvider

        return OpenAICompatibleProvider(spec)
    if spec.provider == "offline":
        from llmgateway.providers.offline import OfflineProvider

        return OfflineProvider(spec)
    raise ProviderError(f"Model {spec.name!r} has an unknown provider.", status=500)


__all__ = ["Provider", "ProviderError", "provider_for"]
