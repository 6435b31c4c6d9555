import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from llmgateway.models import ModelConfig, ModelKind, Provider


def add_model(name, **fields):
    """Create or update a model configuration; returns (model, created)."""
    api_key = fields.pop("api_key", None)
    fallback = fields.pop("fallback", None)
    model = ModelConfig.objects.filter(name=name).first()
    created = model is None
    model = model or ModelConfig(name=name)
    for field, value in fields.items():
        if value is not None:
            setattr(model, field, value)
    if fields.get("deadline_seconds") == 0:
        model.deadline_seconds = None  # back to LLM_DEADLINE_SECONDS
    if fallback is not None:
        model.fallback = ModelConfig.objects.filter(name=fallback).first() if fallback else None
        if fallback and model.fallback is None:
            raise ValidationError({"fallback": f"No model named {fallback!r}."})
    if api_key is not None:
        model.set_api_key(api_key)
    model.full_clean()
    if model.is_default:
        ModelConfig.objects.filter(is_default=True).exclude(pk=model.pk).update(is_default=False)
    model.save()
    return model, created


class Command(BaseCommand):
    help = "Add or update a model the gateway offers (the upstream key comes from an environment variable)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the name clients send as `model`")
        parser.add_argument("--provider", choices=[p.value for p in Provider], default=Provider.OPENAI_COMPATIBLE)
        parser.add_argument(
            "--kind",
            choices=[k.value for k in ModelKind],
            help="chat (the default) or embedding: what the model serves",
        )
        parser.add_argument("--base-url", help="e.g. https://api.openai.com/v1")
        parser.add_argument("--upstream-model", help="the model id the upstream expects")
        parser.add_argument("--api-key-env", help="environment variable holding the upstream key")
        parser.add_argument(
            "--store-key-from-env",
            metavar="VAR",
            help="read the key from this variable now and store it encrypted (instead of reading it at run time)",
        )
        parser.add_argument("--description")
        parser.add_argument("--price-input", help="price per 1k input tokens")
        parser.add_argument("--price-output", help="price per 1k output tokens")
        parser.add_argument("--timeout", type=int, help="seconds one attempt may take (default 120)")
        parser.add_argument("--max-retries", type=int)
        parser.add_argument(
            "--deadline",
            type=int,
            help="seconds a request may take in all, retries and fallbacks included (0: LLM_DEADLINE_SECONDS)",
        )
        parser.add_argument("--cache-ttl", type=int, help="seconds answers stay cached (default 3600)")
        parser.add_argument("--fallback", help="name of the model to try when this one fails")
        parser.add_argument("--default", action="store_true", help="use it when a request names no model")
        parser.add_argument("--disable", action="store_true")

    def handle(self, name, **options):
        api_key = None
        if options["store_key_from_env"]:
            api_key = os.environ.get(options["store_key_from_env"])
            if not api_key:
                raise CommandError(f"{options['store_key_from_env']} is not set")
        try:
            model, created = add_model(
                name,
                provider=options["provider"],
                kind=options["kind"],
                base_url=options["base_url"],
                upstream_model=options["upstream_model"],
                api_key_env=options["api_key_env"],
                description=options["description"],
                price_input_per_1k=options["price_input"],
                price_output_per_1k=options["price_output"],
                timeout_seconds=options["timeout"],
                max_retries=options["max_retries"],
                deadline_seconds=options["deadline"],
                cache_ttl_seconds=options["cache_ttl"],
                is_default=True if options["default"] else None,
                enabled=False if options["disable"] else None,
                fallback=options["fallback"],
                api_key=api_key,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items())
            raise CommandError(problems) from None
        self.stdout.write(f"{'Added' if created else 'Updated'} model {model.name} ({model.provider}).")
