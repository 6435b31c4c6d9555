"""REST API for documents: upload (multipart), list, detail, delete, re-process, cancel, download, search.

Everything goes through the workspaces permission module: querysets start
from `Document.objects.for_user()`, object actions are checked by
`WorkspaceAccess` with the actions below, and an upload or search names its
workspace (`?workspace=<slug>`) which `get_workspace_for` checks before the
request body is read.
"""

from collections.abc import Mapping

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from corporate.api import ID_PATTERN, MAX_ID, StrictCharField, StrictModelSerializer, StrictSlugField
from corporate.parsers import JSONParser
from documents import ingestion
from documents import search as search_module
from documents.downloads import file_response
from documents.models import Chunk, Document, Kind, Status
from documents.uploads import PARSE_ERRORS, display_name, install_guard, parse_error
from workspaces.permissions import WorkspaceAccess, get_workspace_for


class PayloadTooLarge(APIException):
    status_code = 413
    default_detail = "The upload is too large."
    default_code = "too_large"


class Conflict(APIException):
    status_code = 409
    default_code = "duplicate"


class UnsupportedType(APIException):
    status_code = 415
    default_code = "unsupported_type"


class GuardedMultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser with the upload guard's refusals as clear API errors."""

    def parse(self, stream, media_type=None, parser_context=None):
        from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser

        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        try:
            data, files = DjangoMultiPartParser(
                meta, stream, request.upload_handlers, parser_context.get("encoding", "utf-8")
            ).parse()
        except PARSE_ERRORS as exc:
            status, detail, code = parse_error(exc)
            if status == 413:
                raise PayloadTooLarge(detail, code) from None
            if code == "too_many_files":
                raise ParseError({"detail": detail, "file": [detail]}, code) from None
            raise ParseError(detail, code) from None
        return parsers.DataAndFiles(data, files)


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class DocumentSerializer(StrictModelSerializer):
    workspace = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    uploaded_by = UserSerializer(read_only=True)
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    progress = serializers.IntegerField(source="progress_percent", read_only=True)
    content_version = serializers.CharField(read_only=True)

    class Meta:
        model = Document
        fields = [
            "id", "workspace", "title", "original_name", "kind", "content_type", "size", "sha256", "status",
            "failure_reason", "pages_done", "pages_total", "progress", "page_count", "chunk_count", "char_count",
            "uploaded_by", "version", "content_version", "created_at", "updated_at", "processed_at", "url",
            "download_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_url(self, document) -> str:
        return self.context["request"].build_absolute_uri(document.get_absolute_url())

    def get_download_url(self, document) -> str:
        from django.urls import reverse

        return self.context["request"].build_absolute_uri(reverse("api-document-download", args=[document.pk]))


class DocumentDetailSerializer(DocumentSerializer):
    class Meta(DocumentSerializer.Meta):
        fields = [*DocumentSerializer.Meta.fields, "preview"]
        read_only_fields = fields


class ChunkSerializer(serializers.ModelSerializer):
    location = serializers.CharField(read_only=True)

    class Meta:
        model = Chunk
        fields = ["id", "position", "page", "section", "location", "start", "end", "token_estimate", "text"]


class UploadSerializer(serializers.Serializer):
    workspace = StrictSlugField(required=False, help_text="The workspace's slug (or pass ?workspace=).")
    file = serializers.ListField(child=serializers.FileField(), help_text="One or more files.")


class SearchResultSerializer(serializers.Serializer):
    document = inline_serializer("SearchDocument", {"id": serializers.IntegerField(), "title": serializers.CharField()})
    chunk_id = serializers.IntegerField()
    position = serializers.IntegerField()
    page = serializers.IntegerField(allow_null=True)
    section = serializers.CharField()
    location = serializers.CharField()
    snippet = serializers.CharField(help_text="HTML: escaped text with <mark> around matches.")
    text = serializers.CharField()
    score = serializers.FloatField()
    url = serializers.CharField()

    def to_representation(self, result):
        return {
            "document": {"id": result.document.pk, "title": result.document.title},
            "chunk_id": result.chunk_id,
            "position": result.position,
            "page": result.page,
            "section": result.section,
            "location": result.location,
            "snippet": str(result.snippet),
            "text": result.text,
            "score": result.score,
            "url": self.context["request"].build_absolute_uri(result.url),
        }


WORKSPACE_PARAM = OpenApiParameter("workspace", str, description="Workspace slug")


class RenameSerializer(serializers.Serializer):
    title = StrictCharField(max_length=255, trim_whitespace=True)

    def validate_title(self, value):
        value = " ".join(value.split())
        if not value:
            raise serializers.ValidationError("Give the document a title.")
        if "\x00" in value:
            raise serializers.ValidationError("The title contains a NUL character; remove it.")
        return value


class DocumentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    lookup_value_regex = ID_PATTERN  # ASCII digits: other scripts' digits are not ids
    permission_classes = [IsAuthenticated, WorkspaceAccess]
    parser_classes = [GuardedMultiPartParser, parsers.FormParser, JSONParser]
    workspace_actions = {
        "list": "view",
        "retrieve": "view",
        "download": "view",
        "chunks": "view",
        "search": "search",
        "create": "upload",
        "destroy": "edit_documents",
        "partial_update": "edit_documents",
        "reprocess": "edit_documents",
        "cancel": "edit_documents",
    }

    def get_queryset(self):
        # The workspace slug and the uploader are shown in every row.
        queryset = Document.objects.for_user(self.request.user).select_related("workspace", "uploaded_by")
        if self.action == "list":
            queryset = queryset.defer("preview").order_by("-created_at", "-pk")
            params = self.request.query_params
            if params.get("workspace"):
                workspace = get_workspace_for(self.request.user, params["workspace"], "view")
                queryset = queryset.filter(workspace=workspace)
            if params.get("status"):
                if params["status"] not in Status.values:
                    raise ValidationError({"status": [f"Choose one of: {', '.join(Status.values)}."]})
                queryset = queryset.filter(status=params["status"])
            if params.get("kind"):
                if params["kind"] not in Kind.values:
                    raise ValidationError({"kind": [f"Choose one of: {', '.join(Kind.values)}."]})
                queryset = queryset.filter(kind=params["kind"])
            if params.get("q"):
                queryset = queryset.filter(title__icontains=params["q"][:200])
        return queryset

    @extend_schema(request=RenameSerializer, responses=DocumentSerializer, summary="Rename a document")
    def partial_update(self, request, pk=None):
        """Change the title (the only field a person sets; the rest comes from the file)."""
        document = self.get_object()
        serializer = RenameSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        Document.objects.filter(pk=document.pk).update(
            title=serializer.validated_data["title"], updated_at=timezone.now()
        )
        document.refresh_from_db()
        return Response(DocumentSerializer(document, context={"request": request}).data)

    def get_serializer_class(self):
        if self.action == "retrieve":
            return DocumentDetailSerializer
        if self.action == "chunks":
            return ChunkSerializer
        return DocumentSerializer

    def initial(self, request, *args, **kwargs):
        if request.method == "POST" and self.action == "create":
            # Before anything reads the body (authentication may, for CSRF).
            install_guard(request._request)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        parameters=[
            WORKSPACE_PARAM,
            OpenApiParameter("status", str),
            OpenApiParameter("kind", str),
            OpenApiParameter("q", str),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[WORKSPACE_PARAM],
        request={"multipart/form-data": UploadSerializer},
        responses={201: DocumentSerializer(many=True)},
    )
    def create(self, request, *args, **kwargs):
        """Upload one or more files (field `file`); each is stored and queued for processing."""
        slug = request.query_params.get("workspace")
        if slug:
            workspace = get_workspace_for(request.user, slug, "upload")
        else:
            # A JSON body may be a list or a number: it names no workspace then.
            slug = request.data.get("workspace") if isinstance(request.data, Mapping) else None
            if not slug:
                raise ValidationError({"workspace": ["Name the workspace: ?workspace=<slug> or a workspace field."]})
            workspace = get_workspace_for(request.user, slug, "upload")
        rejections = getattr(request._request, "upload_rejections", [])
        files = request.FILES.getlist("file") or request.FILES.getlist("files")
        if not files and not rejections:
            raise ValidationError({"file": ["Attach at least one file in the `file` field."]})
        accepted, errors = [], [dict(item) for item in rejections]
        retry_after = 0
        for uploaded, result in ingestion.accept_each(workspace, files, request.user):
            if not isinstance(result, ingestion.UploadRejected):
                accepted.append(result)
                continue
            error = {
                "name": display_name(uploaded.name),
                "detail": result.message,
                "code": result.code,
                "status": result.status,
            }
            if result.duplicate is not None:
                error["document"] = result.duplicate.pk
            retry_after = max(retry_after, result.retry_after or 0)
            errors.append(error)
        if errors and not accepted:
            statuses = {error["status"] for error in errors}
            code = statuses.pop() if len(statuses) == 1 else 400
            return Response(
                {"detail": errors[0]["detail"], "file": [e["detail"] for e in errors], "errors": _public(errors)},
                status=code,
                headers={"Retry-After": str(retry_after)} if retry_after else None,
            )
        for document in accepted:
            document.workspace = workspace
        data = DocumentSerializer(accepted, many=True, context=self.get_serializer_context()).data
        body = {"documents": data, "errors": _public(errors)}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        ingestion.delete_document(instance)

    @extend_schema(request=None, responses={202: DocumentSerializer})
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Read the document again (after a failure, or with new settings)."""
        document = self.get_object()
        if not ingestion.reprocess(document):
            raise Conflict("The document is already queued or being processed.")
        document.refresh_from_db()
        return Response(DocumentSerializer(document, context=self.get_serializer_context()).data, status=202)

    @extend_schema(request=None, responses={200: DocumentSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop a queued or running ingestion; the document becomes failed."""
        document = self.get_object()
        if not ingestion.cancel(document, request.user):
            raise Conflict("The document is not queued or being processed.")
        document.refresh_from_db()
        return Response(DocumentSerializer(document, context=self.get_serializer_context()).data)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The original file, as an attachment."""
        return file_response(self.get_object())

    @extend_schema(responses={200: ChunkSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def chunks(self, request, pk=None):
        """The document's passages in order (paginated)."""
        document = self.get_object()
        page = self.paginate_queryset(document.chunks.order_by("position"))
        return self.get_paginated_response(ChunkSerializer(page, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True, description='Web-search syntax: words, "phrases", or, -exclude'),
            WORKSPACE_PARAM,
            OpenApiParameter("document", int, many=True, description="Only these document ids"),
            OpenApiParameter("limit", int, description="At most this many results (1–100, default 10)"),
        ],
        responses={200: SearchResultSerializer(many=True)},
    )
    @action(detail=False, methods=["get"])
    def search(self, request):
        """Passages matching the query, best first, with highlighted snippets."""
        params = request.query_params
        query = params.get("q", "").strip()
        if not query:
            raise ValidationError({"q": ["Give the words to search for."]})
        if len(query) > 500:
            raise ValidationError({"q": ["Keep the query under 500 characters."]})
        from corporate.api import parse_id

        workspace = get_workspace_for(request.user, params["workspace"], "search") if params.get("workspace") else None
        # Each field answers for itself; numbers are ASCII digits, as ids are (another script's "٦" is no 6).
        errors = {}
        limit = parse_id(params.get("limit", "10"))
        if limit is None or not 1 <= limit <= search_module.MAX_LIMIT:
            errors["limit"] = [f"A whole number between 1 and {search_module.MAX_LIMIT}."]
        values = params.getlist("document")
        document_ids = [parse_id(value) for value in values] or None
        if any(pk is None for pk in document_ids or ()):
            spelled = all(value.isdigit() for value in values)
            errors["document"] = ["No such document." if spelled else "Whole numbers only."]
        elif any(not 1 <= pk <= MAX_ID for pk in document_ids or ()):
            errors["document"] = ["No such document."]
        if errors:
            raise ValidationError(errors)
        results = search_module.search(request.user, query, workspace=workspace, document_ids=document_ids, limit=limit)
        serializer = SearchResultSerializer(results, many=True, context=self.get_serializer_context())
        return Response({"query": query, "count": len(results), "results": serializer.data})


def _public(errors):
    return [{key: value for key, value in error.items() if key != "status"} for error in errors]
