"""Demo data: the offline model, registered as the default (idempotent)."""

from llmgateway.models import ModelConfig, Provider


def populate(admin):
    model, created = ModelConfig.objects.get_or_create(
        name="offline",
        defaults={
            "provider": Provider.OFFLINE,
            "description": "Quotes the most relevant sentences of the passages sent with a question; no network.",
            "timeout_seconds": 30,
            "max_retries": 0,
        },
    )
    if created and not ModelConfig.objects.filter(is_default=True).exists():
        model.is_default = True
        model.save(update_fields=["is_default"])
    return []
