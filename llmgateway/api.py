"""REST API of the gateway: a workspace's keys, models and cache statistics."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions as drf_permissions
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from llmgateway.auth import KeyInfo
from llmgateway.cache import stats
from llmgateway.models import ApiKey, ModelConfig, Scope
from workspaces.permissions import get_workspace_for


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    state = serializers.CharField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_by", "created_at", "expires_at", "revoked_at", "state"]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), required=False, allow_empty=False
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value):
        from django.utils import timezone

        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Choose a time in the future.")
        return value


class ModelSerializer(serializers.ModelSerializer):
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
        self._key(request, slug, pk).revoke()
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
