"""Configured models, as the request path sees them: `ModelSpec`, read through the cache.

A spec is cached per model name (and for the default model) and dropped
whenever any model configuration changes, so a hit never reads the
database. The built-in `offline` model exists even before any row does.
"""

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace

from django.conf import settings

from llmgateway.cache.entries import MODEL_INFO_TTL, model_info_key
from llmgateway.cache.records import ReadThrough, nearly_due

DEFAULT_ALIAS = "__default__"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    provider: str
    upstream_model: str = ""
    base_url: str = ""
    api_key_env: str = ""
    api_key_encrypted: str = ""
    price_input_per_1k: float = 0.0
    price_output_per_1k: float = 0.0
    timeout: int = 120
    max_retries: int = 2
    cache_ttl: int = 3600
    fallback: str | None = None
    deadline_seconds: int | None = None  # None: LLM_DEADLINE_SECONDS
    kind: str = "chat"  # or "embedding"
    # time.time() of the database read (0: not known): renewed before its TTL ends (records.nearly_due).
    loaded_at: float = field(default=0.0, compare=False)

    @property
    def identity(self):
        """What the cache key knows of the model: changing the upstream changes the key."""
        return f"{self.name}|{self.provider}|{self.upstream_model}|{self.base_url}"

    def api_key(self):
        """The upstream key: from the named environment variable when it is set, else decrypted; '' when none."""
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env]
        if self.api_key_encrypted:
            from llmgateway.crypto import decrypt

            return decrypt(self.api_key_encrypted)
        return ""

    def cost(self, usage):
        """The price of a usage object; 0 for none, and for counts that are not numbers (an upstream's mistake)."""
        if not isinstance(usage, dict):
            return 0.0
        prompt = _count(usage.get("prompt_tokens"))
        completion = _count(usage.get("completion_tokens"))
        return round(prompt / 1000 * self.price_input_per_1k + completion / 1000 * self.price_output_per_1k, 6)

    def dumps(self):
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def loads(cls, raw):
        # Fields this version does not know (written by a newer one) are left out.
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(raw).items() if k in known})

    @classmethod
    def from_config(cls, config):
        return cls(
            name=config.name,
            provider=config.provider,
            upstream_model=config.upstream_model,
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            api_key_encrypted=config.api_key_encrypted,
            price_input_per_1k=float(config.price_input_per_1k),
            price_output_per_1k=float(config.price_output_per_1k),
            timeout=config.timeout_seconds,
            max_retries=config.max_retries,
            cache_ttl=config.cache_ttl_seconds,
            fallback=config.fallback.name if config.fallback_id and config.fallback.enabled else None,
            deadline_seconds=config.deadline_seconds,
            kind=config.kind,
        )


def _count(value):
    return value if isinstance(value, int | float) and not isinstance(value, bool) else 0


BUILTIN_OFFLINE = ModelSpec(name="offline", provider="offline", cache_ttl=3600, timeout=30, max_retries=0)


def lookup_name(name):
    return name or DEFAULT_ALIAS


def _spec_from_database(alias):
    """The spec for a name as looked up (DEFAULT_ALIAS: the default model), or None."""
    from llmgateway.models import ModelConfig

    loaded_at = time.time()  # before the query: a change after this is seen on the next read
    name = None if alias == DEFAULT_ALIAS else alias
    queryset = ModelConfig.objects.filter(enabled=True).select_related("fallback")
    if name:
        config = queryset.filter(name=name).first()
    else:
        config = queryset.filter(is_default=True).first() or queryset.filter(name=settings.LLM_DEFAULT_MODEL).first()
    if config is not None:
        return replace(ModelSpec.from_config(config), loaded_at=loaded_at)
    if (name or settings.LLM_DEFAULT_MODEL) == BUILTIN_OFFLINE.name and not ModelConfig.objects.filter(
        name=BUILTIN_OFFLINE.name
    ).exists():
        return replace(BUILTIN_OFFLINE, loaded_at=loaded_at)
    return None


specs = ReadThrough(
    model_info_key, ModelSpec.loads, _spec_from_database, MODEL_INFO_TTL, renew=nearly_due(MODEL_INFO_TTL)
)


def spec_from_cached(raw, alias=None):
    """(found, spec) from a cached value: (False, None) when not cached, (True, None) for "no such model".

    alias: the name it was looked up by (`lookup_name`), to have a record nearly due read again after the response.
    """
    return specs.from_cached(raw, alias)


def load(name):
    """The spec for a model name (None: the default model), from the database, then cached."""
    return specs.load(lookup_name(name))


def get_spec(name):
    """The spec for a model name, through the cache; None when no enabled model has that name."""
    return specs.get(lookup_name(name))


def forget_all():
    """Drop every cached spec (any model change may touch names, defaults and fallbacks)."""
    from llmgateway.models import ModelConfig

    names = set(ModelConfig.objects.values_list("name", flat=True)) | {DEFAULT_ALIAS, BUILTIN_OFFLINE.name}
    specs.forget(*names)


def forget_name(name):
    specs.forget(lookup_name(name))
