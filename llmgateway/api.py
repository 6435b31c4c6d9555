"""REST API of the gateway: a workspace's keys, models, cache statistics, usage and limits."""

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Sum
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions as drf_permissions
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import ListAPIView, get_object_or_404
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from corporate.api import MAX_ID, StrictCharField, StrictModelSerializer
from llmgateway.auth import KeyInfo
from llmgateway.cache import stats
from llmgateway.metering import configure, quota, reports
from llmgateway.models import ApiKey, CacheOutcome, Limit, LimitKind, ModelConfig, Scope, UsageRecord
from workspaces.permissions import can, check_person, get_workspace_for


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    state = serializers.CharField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_by", "created_at", "expires_at", "revoked_at", "state"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), required=False, allow_empty=False
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value):
        from django.utils import timezone

        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Choose a time in the future.")
        return value


class ModelSerializer(StrictModelSerializer):
    fallback = serializers.CharField(source="fallback.name", default=None, read_only=True)

    class Meta:
        model = ModelConfig
        fields = [
            "name",
            "description",
            "provider",
            "upstream_model",
            "price_input_per_1k",
            "price_output_per_1k",
            "timeout_seconds",
            "max_retries",
            "cache_ttl_seconds",
            "fallback",
            "is_default",
        ]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key, shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


LATENCY = inline_serializer(
    "CacheLatency",
    {
        "mean": serializers.FloatField(allow_null=True),
        "p50_at_most": serializers.IntegerField(allow_null=True),
        "p95_at_most": serializers.IntegerField(allow_null=True),
    },
)
CACHE_STATS = inline_serializer(
    "CacheStats",
    {
        "workspace": serializers.CharField(allow_null=True),
        "requests": serializers.IntegerField(),
        "hit": serializers.IntegerField(),
        "miss": serializers.IntegerField(),
        "coalesced": serializers.IntegerField(),
        "bypass": serializers.IntegerField(),
        "error": serializers.IntegerField(),
        "hit_rate": serializers.FloatField(allow_null=True),
        "served_without_upstream_rate": serializers.FloatField(allow_null=True),
        "tokens_saved": serializers.IntegerField(),
        "cost_saved": serializers.FloatField(),
        "tokens_upstream": serializers.IntegerField(),
        "cost_upstream": serializers.FloatField(),
        "hit_latency_ms": LATENCY,
        "miss_latency_ms": LATENCY,
    },
)


class ApiKeyList(APIView):
    """GET: the workspace's keys. POST: a new key; the response holds the full key, once."""

    serializer_class = ApiKeySerializer

    @extend_schema(responses=ApiKeySerializer(many=True))
    def get(self, request, slug):
        workspace = get_workspace_for(request.user, slug, "manage_keys")
        keys = ApiKey.objects.in_workspace(workspace).for_list()
        return Response(ApiKeySerializer(keys, many=True).data)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request, slug):
        workspace = get_workspace_for(request.user, slug, "manage_keys")
        if isinstance(request.auth, KeyInfo):
            # A key cannot mint keys: a leaked or short-lived key must not outlive itself.
            raise PermissionDenied(
                "API keys are created by a signed-in admin or with a user token, not with an API key."
            )
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, full = ApiKey.create(
            workspace,
            serializer.validated_data["name"],
            request.user,
            scopes=serializer.validated_data.get("scopes"),
            expires_at=serializer.validated_data.get("expires_at"),
        )
        return Response(dict(ApiKeySerializer(key).data, key=full), status=status.HTTP_201_CREATED)


class ApiKeyDetail(APIView):
    """GET: one key. DELETE: revoke it (the row stays, marked revoked)."""

    serializer_class = ApiKeySerializer

    def _key(self, request, slug, pk):
        workspace = get_workspace_for(request.user, slug, "manage_keys")
        return get_object_or_404(ApiKey.objects.in_workspace(workspace).select_related("created_by"), pk=pk)

    def get(self, request, slug, pk):
        return Response(ApiKeySerializer(self._key(request, slug, pk)).data)

    def delete(self, request, slug, pk):
        key = self._key(request, slug, pk)
        check_person(request.user, "revoke API keys")
        key.revoke()
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelList(APIView):
    """The models a workspace's members can name in a request."""

    serializer_class = ModelSerializer

    @extend_schema(responses=ModelSerializer(many=True))
    def get(self, request, slug):
        get_workspace_for(request.user, slug, "view")
        return Response(ModelSerializer(ModelConfig.objects.for_listing(), many=True).data)


class WorkspaceCacheStats(APIView):
    """Cache statistics of one workspace (its admins)."""

    @extend_schema(responses=CACHE_STATS, operation_id="gateway_workspace_cache_stats")
    def get(self, request, slug):
        workspace = get_workspace_for(request.user, slug, "view_usage")
        return Response({"workspace": workspace.slug, **stats.summary(workspace.pk)})


class OverallCacheStats(APIView):
    """Cache statistics over all workspaces (staff)."""

    permission_classes = [drf_permissions.IsAdminUser]

    @extend_schema(responses=CACHE_STATS, operation_id="gateway_cache_stats")
    def get(self, request):
        return Response({"workspace": None, **stats.summary(None)})


# Usage and limits -----------------------------------------------------------------------------------


class UsageRecordSerializer(serializers.ModelSerializer):
    user = serializers.EmailField(source="user.email", default=None, read_only=True)

    class Meta:
        model = UsageRecord
        fields = [
            "request_id",
            "created_at",
            "user",
            "user_id",
            "api_key_id",
            "assistant_id",
            "origin",
            "model",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "cache",
            "status",
            "latency_ms",
        ]
        read_only_fields = fields


class UsageFilter(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="first day (YYYY-MM-DD); default: 29 days before until")
    until = serializers.DateField(required=False, help_text="last day (YYYY-MM-DD); default: today")
    user = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    api_key = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    assistant = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    model = StrictCharField(required=False, max_length=100)
    cache = serializers.ChoiceField(required=False, choices=CacheOutcome.choices)

    def validate(self, attrs):
        # A missing end counts at its default (today, or 29 days before until): since=2000-01-01 alone is too long.
        # The summary's hourly buckets cover fewer days than its daily ones (UsageSummaryQuery's bucket).
        error = reports.range_error(attrs.get("since"), attrs.get("until"), attrs.get("bucket", "day"))
        if error:
            raise serializers.ValidationError({error[0]: error[1]})
        return attrs


def filtered_usage(request, workspace):
    """(usage, filters) for a usage request: what the user may see, in the range, filtered (reports.Usage)."""
    params = UsageFilter(data=request.query_params)
    params.is_valid(raise_exception=True)
    data = params.validated_data
    usage = reports.usage_for(request.user, workspace, data.get("since"), data.get("until"))
    return usage.filter(**{name: data.get(name) for name in reports.FILTERS}), data


class UsagePagination(CursorPagination):
    """Newest first, a page at a time by position (`?cursor=`): no OFFSET and no COUNT over millions of rows.

    `count` is the number of requests in the hourly totals with the same filters: what the list holds.
    """

    page_size = 50
    ordering = ("-created_at", "-id")

    def paginate_queryset(self, queryset, request, view=None):
        self.count = (view.usage.days.aggregate(n=Sum("requests"))["n"] or 0) if view is not None else None
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        return Response(
            {"count": self.count, "next": self.get_next_link(), "previous": self.get_previous_link(), "results": data}
        )

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count"] = {"type": "integer", "example": 123}
        return response


class UsageList(ListAPIView):
    """Usage records, newest first: the workspace's for its admins, a member's own for everyone else."""

    serializer_class = UsageRecordSerializer
    pagination_class = UsagePagination

    @extend_schema(parameters=[UsageFilter])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        workspace = get_workspace_for(self.request.user, self.kwargs["slug"], "view")
        self.usage, _ = filtered_usage(self.request, workspace)
        return self.usage.records.select_related("user")


class UsageSummaryQuery(UsageFilter):
    bucket = serializers.ChoiceField(choices=["day", "hour"], default="day", required=False)
    by = serializers.ChoiceField(choices=reports.BREAKDOWNS, required=False)


class UsageSummary(APIView):
    """Totals, a series per day or hour and, with `by`, a breakdown: what the Usage page shows."""

    @extend_schema(
        parameters=[UsageSummaryQuery], responses=inline_serializer("UsageSummary", {"totals": serializers.DictField()})
    )
    def get(self, request, slug):
        workspace = get_workspace_for(request.user, slug, "view")
        query = UsageSummaryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        usage, data = filtered_usage(request, workspace)
        points = reports.series(usage, query.validated_data["bucket"])
        body = {
            "workspace": workspace.slug,
            "scope": "workspace" if can(request.user, "view_usage", workspace) else "mine",
            "since": reports.date_range(data.get("since"), data.get("until"))[0].date(),
            "until": data.get("until") or reports.timezone.localdate(),
            "totals": _plain(reports.total_of(points)),
            "series": [_plain(p) for p in points],
        }
        if query.validated_data.get("by"):
            if query.validated_data["by"] in ("user", "key") and body["scope"] == "mine":
                raise PermissionDenied("Only those who may see the workspace's usage can break it down by user or key.")
            body["breakdown"] = [_plain(r) for r in reports.breakdown(usage, query.validated_data["by"])]
        return Response(body)


def _plain(row):
    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in row.items() if k != "group"} | (
        {"id": row["group"]} if "group" in row and not hasattr(row["group"], "date") else {}
    )


class LimitSerializer(StrictModelSerializer):
    class Meta:
        model = Limit
        fields = list(Limit.FIELDS)


class LimitDetail(APIView):
    """GET, PUT (all five; empty = no limit), PATCH, DELETE: one scope's limits (workspace admins).

    Scopes: `workspace` (the whole workspace), `members` (each member without limits of their own),
    `users/<user id>`, `keys/<key id>`.
    """

    serializer_class = LimitSerializer

    def _target(self, request, slug, kind, pk=None, action="manage_settings"):
        workspace = get_workspace_for(request.user, slug, action)
        if action != "view_usage" and isinstance(request.auth, KeyInfo):
            # A key cannot lift the limits put on it (or on its workspace, or its creator).
            raise PermissionDenied("Limits are changed by a signed-in admin or with a user token, not with an API key.")
        if kind == "key":
            key = get_object_or_404(ApiKey.objects.in_workspace(workspace), pk=pk)
            return configure.limit_for(LimitKind.KEY, api_key=key), {"api_key": key}
        if kind == "user":
            user = get_object_or_404(get_user_model().objects.filter(memberships__workspace=workspace), pk=pk)
            return configure.limit_for(LimitKind.USER, workspace, user), {"workspace": workspace, "user": user}
        kind = LimitKind.USER if kind == "members" else LimitKind.WORKSPACE
        return configure.limit_for(kind, workspace), {"workspace": workspace}

    def get(self, request, slug, kind, pk=None):
        limit, _ = self._target(request, slug, kind, pk, "view_usage")
        return Response(LimitSerializer(limit).data)

    @extend_schema(request=LimitSerializer, responses=LimitSerializer)
    def put(self, request, slug, kind, pk=None, partial=False):
        limit, where = self._target(request, slug, kind, pk)
        serializer = LimitSerializer(limit, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        values = {name: serializer.validated_data.get(name) for name in Limit.FIELDS}
        if partial:
            values = {
                name: serializer.validated_data[name] for name in Limit.FIELDS if name in serializer.validated_data
            }
        saved = configure.save_limits(limit.kind, values, **where)
        return Response(LimitSerializer(saved or configure.limit_for(limit.kind, **_lookup(limit))).data)

    @extend_schema(request=LimitSerializer, responses=LimitSerializer)
    def patch(self, request, slug, kind, pk=None):
        return self.put(request, slug, kind, pk, partial=True)

    def delete(self, request, slug, kind, pk=None):
        limit, _ = self._target(request, slug, kind, pk)
        if limit.pk:
            limit.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


def _lookup(limit):
    return {"workspace": limit.workspace, "user": limit.user, "api_key": limit.api_key}


class Quota(APIView):
    """The limits that apply to the signed-in user in the workspace, and what is left of each."""

    @extend_schema(responses=inline_serializer("Quota", {"limits": serializers.ListField()}))
    def get(self, request, slug):
        workspace = get_workspace_for(request.user, slug, "view")
        key = request.auth if isinstance(request.auth, KeyInfo) else None
        return Response({"workspace": workspace.slug, "limits": quota.for_user(workspace, request.user, key)})
