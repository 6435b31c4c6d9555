"""Shared parts of the usage commands: limit options, parsed and checked like the page's form."""

from django.core.management.base import CommandError

from llmgateway.metering.configure import LimitForm

OPTIONS = {
    "rpm": ("--rpm", "requests per minute"),
    "tpm": ("--tpm", "tokens per minute"),
    "max_concurrent": ("--max-concurrent", "concurrent requests"),
    "daily_budget": ("--daily-budget", "USD per day, e.g. 25 or 12.50"),
    "monthly_budget": ("--monthly-budget", "USD per month"),
}


def add_limit_arguments(parser):
    for name, (flag, help_text) in OPTIONS.items():
        parser.add_argument(flag, dest=name, metavar="N", help=f"{help_text}; 'none' removes the limit")


def limit_values(options, instance=None):
    """{name: value or None} of the options given, validated by the page's form; CommandError naming the option."""
    given = {name: options.get(name) for name in OPTIONS if options.get(name) is not None}
    data = {}
    for name in OPTIONS:
        current = getattr(instance, name, None) if instance is not None else None
        value = given.get(name, current)
        data[name] = "" if value is None or str(value).lower() == "none" else str(value)
    form = LimitForm(data=data)
    if not form.is_valid():
        errors = "; ".join(f"{OPTIONS[name][0]}: {' '.join(msgs)}" for name, msgs in form.errors.items())
        raise CommandError(errors)
    return {name: form.cleaned_data[name] for name in given}
