"""Models, API keys, the per-workspace cache generation, usage records and limits.

Model configurations are deployment-wide (staff manage them in the admin or
with `manage.py add_model`); API keys, cache generations, usage records and
limits belong to a workspace (default limits for every workspace have none).
Usage records are buffered and written in bulk (llmgateway.metering), so the
request path writes nothing to the database on a hit.
"""

import hashlib
import secrets
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from llmgateway.providers import addresses
from workspaces.permissions import WorkspaceOwnedQuerySet

MODEL_NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$",
    "Use letters, digits and . _ : / - (up to 100 characters), starting with a letter or digit.",
)
ENV_NAME_VALIDATOR = RegexValidator(
    r"^[A-Z_][A-Z0-9_]{0,99}$", "Use an environment variable name, e.g. OPENAI_API_KEY."
)


class ModelKind(models.TextChoices):
    CHAT = "chat", "Chat (completions)"
    EMBEDDING = "embedding", "Embedding (vectors for search by meaning)"


class Provider(models.TextChoices):
    OFFLINE = "offline", "Offline (extractive answers from the supplied passages)"
    OPENAI_COMPATIBLE = "openai-compatible", "OpenAI-compatible endpoint"


def validate_base_url(value):
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError("Enter an http:// or https:// URL, e.g. https://api.openai.com/v1")
    if parts.username or parts.password:
        raise ValidationError("Put credentials in the API key, not in the URL.")
    if parts.fragment:
        raise ValidationError("The URL must not have a #fragment.")
    try:
        addresses.check_url(value)
    except addresses.Refused as exc:
        raise ValidationError(str(exc)) from None


class ModelConfigQuerySet(models.QuerySet):
    def for_listing(self):
        """Models page and /v1/models: the enabled models, default first."""
        return self.filter(enabled=True).select_related("fallback").order_by("-is_default", "name")


class ModelConfig(models.Model):
    """One model that clients can name in a request, and how to reach it."""

    # What an administrator sets (the admin's form; the audit log records changes to these).
    SETTINGS = (
        "name",
        "description",
        "kind",
        "provider",
        "upstream_model",
        "base_url",
        "api_key_env",
        "price_input_per_1k",
        "price_output_per_1k",
        "timeout_seconds",
        "max_retries",
        "deadline_seconds",
        "cache_ttl_seconds",
        "fallback",
        "enabled",
        "is_default",
    )

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[MODEL_NAME_VALIDATOR],
        help_text="The model name clients send, e.g. gpt-4o-mini.",
        error_messages={"unique": "A model with this name already exists."},
    )
    description = models.CharField(max_length=200, blank=True)
    kind = models.CharField(
        max_length=16,
        choices=ModelKind.choices,
        default=ModelKind.CHAT,
        help_text="Chat models answer /v1/chat/completions; embedding models /v1/embeddings and search by meaning.",
    )
    provider = models.CharField(max_length=32, choices=Provider.choices, default=Provider.OFFLINE)
    upstream_model = models.CharField(max_length=200, blank=True, help_text="The model id the upstream expects.")
    base_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_base_url],
        help_text="e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1",
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[ENV_NAME_VALIDATOR],
        help_text="Read the upstream key from this environment variable (preferred).",
    )
    # Fernet token; see crypto.py. Never shown again after saving.
    api_key_encrypted = models.TextField(blank=True, editable=False)
    price_input_per_1k = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    price_output_per_1k = models.DecimalField(
        max_digits=12, decimal_places=6, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )
    timeout_seconds = models.PositiveIntegerField(
        default=120, validators=[MinValueValidator(1), MaxValueValidator(600)]
    )
    max_retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])
    deadline_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="The longest a request to this model may take, every retry and fallback included; "
        "empty: the gateway's default (LLM_DEADLINE_SECONDS). Keep it below the web server's timeout "
        "(WEB_TIMEOUT) for clients that wait for whole answers.",
    )
    cache_ttl_seconds = models.PositiveIntegerField(
        default=60 * 60, validators=[MinValueValidator(1)], help_text="How long answers stay cached."
    )
    fallback = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Tried when this model fails or is cooling down.",
    )
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False, help_text="Used when a request names no model.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ModelConfigQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "model"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="llmgateway_modelconfig_one_default",
                violation_error_message="Another model is already the default.",
            ),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        if self.provider == Provider.OPENAI_COMPATIBLE:
            if not self.base_url:
                raise ValidationError({"base_url": "An OpenAI-compatible model needs a base URL."})
            if not self.upstream_model:
                raise ValidationError({"upstream_model": "Name the model id the upstream expects."})
        if self.fallback_id and self.fallback_id == self.pk:
            raise ValidationError({"fallback": "A model cannot fall back to itself."})
        if self.kind == ModelKind.EMBEDDING and self.is_default:
            raise ValidationError({"is_default": "An embedding model cannot be the default chat model."})

    def set_api_key(self, plain):
        from llmgateway.crypto import encrypt

        self.api_key_encrypted = encrypt(plain) if plain else ""

    @property
    def has_stored_key(self):
        return bool(self.api_key_encrypted)


API_KEY_PREFIX = "gw_"


class Scope(models.TextChoices):
    COMPLETIONS = "completions", "Chat completions and the model list (/v1/)"
    READ = "read", "Read through the REST API (/api/)"
    WRITE = "write", "Change things through the REST API (/api/)"


DEFAULT_SCOPES = [Scope.COMPLETIONS.value]


def hash_key(full_key):
    """Keys carry 192 random bits, so one SHA-256 is enough (no slow hash needed)."""
    return hashlib.sha256(full_key.encode()).hexdigest()


def new_key():
    """(full key, prefix): gw_<8 chars>_<43 chars>; only the prefix and the hash are stored."""
    prefix = secrets.token_hex(4)
    return f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


class ApiKeyQuerySet(WorkspaceOwnedQuerySet):
    def for_list(self):
        """Keys page and API: a workspace's keys with their creators, newest first."""
        return self.select_related("created_by").order_by("revoked_at", "-created_at")

    def usable(self):
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )


class ApiKey(models.Model):
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        indexes = [
            # keys page: one workspace's keys, newest first.
            models.Index(fields=["workspace", "-created_at"], name="llmgw_apikey_ws_created"),
            # deactivation: every key a user created.
            models.Index(fields=["created_by"], name="llmgw_apikey_creator"),
        ]

    def __str__(self):
        return f"{self.name} ({API_KEY_PREFIX}{self.prefix}_…)"

    @property
    def display_prefix(self):
        return f"{API_KEY_PREFIX}{self.prefix}_…"

    @property
    def state(self):
        if self.revoked_at:
            return "revoked"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @classmethod
    def create(cls, workspace, name, created_by, scopes=None, expires_at=None):
        """A new key and its full text; the text is never stored and cannot be shown again."""
        full, prefix = new_key()
        key = cls.objects.create(
            workspace=workspace,
            name=name,
            prefix=prefix,
            key_hash=hash_key(full),
            scopes=sorted(set(scopes or DEFAULT_SCOPES)),
            created_by=created_by,
            expires_at=expires_at,
        )
        return key, full

    def revoke(self):
        from llmgateway import auth

        if not self.revoked_at:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])
        auth.forget_keys([self.key_hash])


class CacheGeneration(models.Model):
    """The workspace's cache generation: raising it hides every answer cached before."""

    workspace = models.OneToOneField(
        "workspaces.Workspace", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    generation = models.PositiveIntegerField(default=0)

    def __str__(self):
        return f"{self.workspace_id}: {self.generation}"


# Usage records and limits ---------------------------------------------------------------------------


class CacheOutcome(models.TextChoices):
    HIT = "hit", "Cache hit"
    COALESCED = "coalesced", "Shared an identical call"
    MISS = "miss", "Cache miss"
    BYPASS = "bypass", "Not cached"
    ERROR = "error", "Failed"
    REFUSED = "refused", "Refused by a limit"


class UsageRecordQuerySet(WorkspaceOwnedQuerySet):
    def visible_to(self, user, workspace):
        """Usage pages and API: the workspace's records for those who may view usage, else the user's own."""
        from workspaces import permissions

        records = self.in_workspace(workspace)
        if permissions.can(user, "view_usage", workspace):
            return records
        return records.filter(user_id=user.pk)


class UsageRecord(models.Model):
    """One completion: who asked, what it cost, how the cache served it. Written in bulk (llmgateway.metering)."""

    request_id = models.UUIDField(unique=True, editable=False)
    # No database constraints: rows arrive in bulk after the request, when a key or user may be gone.
    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    api_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    assistant_id = models.PositiveIntegerField(null=True, blank=True)
    origin = models.CharField(max_length=16, default="python")
    model = models.CharField(max_length=100)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    cache = models.CharField(max_length=10, choices=CacheOutcome.choices)
    status = models.PositiveSmallIntegerField(default=200)
    latency_ms = models.FloatField(default=0)
    created_at = models.DateTimeField(db_index=False)

    objects = UsageRecordQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # usage page and API: one workspace's records in a date range (charts, breakdowns, CSV).
            models.Index(fields=["workspace", "created_at"], name="llmgw_usage_ws_time"),
            # a member's own usage, and budgets per user.
            models.Index(fields=["workspace", "user", "created_at"], name="llmgw_usage_ws_user_time"),
            # budgets per key.
            models.Index(fields=["api_key", "created_at"], name="llmgw_usage_key_time"),
            # retention: the oldest rows first.
            models.Index(fields=["created_at"], name="llmgw_usage_time"),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.model} {self.cache}"

    @property
    def total_tokens(self):
        return self.prompt_tokens + self.completion_tokens


class UsageTotals(models.Model):
    """Usage added up per period and combination, by the bulk writer in the transaction that stores the records.

    One row per workspace, period, user, key, assistant, model and cache outcome (0 for no user, key or
    assistant, so the combination is unique on every database). The pages, the summary API, the CSV and
    `usage_report` read these, never the records: a month is a few thousand rows however busy it was.
    """

    workspace = models.ForeignKey(
        "workspaces.Workspace", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    user_id = models.IntegerField(default=0)
    api_key_id = models.IntegerField(default=0)
    assistant_id = models.IntegerField(default=0)
    model = models.CharField(max_length=100)
    cache = models.CharField(max_length=10, choices=CacheOutcome.choices)
    requests = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=16, decimal_places=6, default=Decimal("0"))
    latency_ms = models.FloatField(default=0)  # the sum: divided by requests for the mean

    objects = UsageRecordQuerySet.as_manager()

    # The columns that make a row's combination, besides its period.
    GROUP = ("workspace_id", "user_id", "api_key_id", "assistant_id", "model", "cache")
    ADDED = ("requests", "prompt_tokens", "completion_tokens", "cost", "latency_ms")

    class Meta:
        abstract = True


class UsageHour(UsageTotals):
    """Usage per hour (its start, in TIME_ZONE): the hourly charts. Pruned with the records (prune_usage)."""

    hour = models.DateTimeField()

    class Meta:
        verbose_name = "hourly usage"
        verbose_name_plural = "hourly usage"
        constraints = [
            # the writer adds to the row of a combination (INSERT ... ON CONFLICT DO UPDATE).
            models.UniqueConstraint(
                fields=["workspace", "hour", "user_id", "api_key_id", "assistant_id", "model", "cache"],
                name="llmgw_usagehour_combination",
            ),
        ]

    def __str__(self):
        return f"{self.hour:%Y-%m-%d %H:00} {self.model} {self.cache}: {self.requests}"


class UsageDay(UsageTotals):
    """Usage per day in TIME_ZONE: totals, daily charts, breakdowns and CSV of the usage pages. Kept."""

    day = models.DateField()

    class Meta:
        verbose_name = "daily usage"
        verbose_name_plural = "daily usage"
        constraints = [
            # the writer adds to the row of a combination; the pages read a workspace's days in a range.
            models.UniqueConstraint(
                fields=["workspace", "day", "user_id", "api_key_id", "assistant_id", "model", "cache"],
                name="llmgw_usageday_combination",
            ),
        ]

    def __str__(self):
        return f"{self.day} {self.model} {self.cache}: {self.requests}"


def _not_negative(value):
    if value is not None and value < 0:
        raise ValidationError("Enter 0 or more, or leave empty for no limit.")


# The largest count a limit takes (a PostgreSQL integer holds 2,147,483,647): a billion a minute is no limit.
MAX_LIMIT_COUNT = 1_000_000_000
_at_most = MaxValueValidator(MAX_LIMIT_COUNT, "Enter at most 1,000,000,000, or leave empty for no limit.")


class LimitKind(models.TextChoices):
    WORKSPACE = "workspace", "Whole workspace"
    USER = "user", "Per person"
    KEY = "key", "API key"


class LimitQuerySet(models.QuerySet):
    def for_user(self, user):
        from workspaces.permissions import workspace_ids

        return self.filter(workspace_id__in=workspace_ids(user))


class Limit(models.Model):
    """Optional limits on completions; an empty field means no limit.

    - kind "workspace": the whole workspace (workspace empty: the default for every workspace).
    - kind "user": one person in the workspace (user empty: each member without a limit of their
      own; workspace and user empty: each member of every workspace).
    - kind "key": one API key.
    """

    kind = models.CharField(max_length=10, choices=LimitKind.choices)
    workspace = models.ForeignKey(
        "workspaces.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="limits"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    api_key = models.OneToOneField(ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="limit")
    rpm = models.PositiveIntegerField(
        "requests per minute", null=True, blank=True, validators=[_not_negative, _at_most], help_text="Empty: no limit."
    )
    tpm = models.PositiveIntegerField(
        "tokens per minute", null=True, blank=True, validators=[_not_negative, _at_most], help_text="Empty: no limit."
    )
    max_concurrent = models.PositiveIntegerField(
        "concurrent requests", null=True, blank=True, validators=[_not_negative, _at_most], help_text="Empty: no limit."
    )
    daily_budget = models.DecimalField(
        "budget per day (USD)",
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Empty: no limit.",
    )
    monthly_budget = models.DecimalField(
        "budget per month (USD)",
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Empty: no limit.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = LimitQuerySet.as_manager()

    FIELDS = ("rpm", "tpm", "max_concurrent", "daily_budget", "monthly_budget")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(kind="workspace", workspace__isnull=False),
                name="llmgateway_limit_one_per_workspace",
                violation_error_message="This workspace has limits already; change those.",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(workspace__isnull=True, user__isnull=True),
                name="llmgateway_limit_one_default",
                violation_error_message="These defaults exist already; change those.",
            ),
            models.UniqueConstraint(
                fields=["workspace", "user"],
                condition=Q(kind="user", workspace__isnull=False, user__isnull=False),
                name="llmgateway_limit_one_per_member",
                violation_error_message="This person has limits here already; change those.",
            ),
            models.UniqueConstraint(
                fields=["workspace"],
                condition=Q(kind="user", workspace__isnull=False, user__isnull=True),
                name="llmgateway_limit_one_member_default",
                violation_error_message="This workspace has limits for each member already; change those.",
            ),
            models.CheckConstraint(
                condition=Q(kind="key", api_key__isnull=False, user__isnull=True, workspace__isnull=False)
                | Q(kind="user", api_key__isnull=True, user__isnull=True)
                | Q(kind="user", api_key__isnull=True, workspace__isnull=False)
                | Q(kind="workspace", api_key__isnull=True, user__isnull=True),
                name="llmgateway_limit_kind_fits",
            ),
        ]

    def __str__(self):
        if self.kind == LimitKind.KEY:
            return f"limits of key {self.api_key_id}"
        where = f"workspace {self.workspace_id}" if self.workspace_id else "every workspace"
        if self.kind == LimitKind.USER:
            return f"limits of {'user ' + str(self.user_id) if self.user_id else 'each member'} in {where}"
        return f"limits of {where}"

    def as_dict(self):
        """{name: number} of the limits that are set; budgets in micro-dollars."""
        out = {}
        for name in self.FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = int(value * 1_000_000) if name.endswith("budget") else int(value)
        return out

    @property
    def is_empty(self):
        return all(getattr(self, name) is None for name in self.FIELDS)
