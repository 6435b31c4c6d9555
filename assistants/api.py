"""REST API: assistants (CRUD by role), conversations and messages, feedback.

Assistants: /api/assistants/ (filter ?workspace=<slug>); conversations:
/api/conversations/ (the caller's own only); asking:
POST /api/conversations/<id>/messages/ {"content": "...", "stream": false}
returns the stored answer as JSON, or server-sent events with
"stream": true or `Accept: text/event-stream`.
"""

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.http import parse_header_parameters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from assistants import answering
from assistants.forms import model_choices
from assistants.models import MAX_STARTER_CHARS, MAX_STARTERS, Assistant, Conversation, Message, Role
from corporate.api import (
    ID_PATTERN,
    StrictBooleanField,
    StrictCharField,
    StrictManyRelatedField,
    StrictModelSerializer,
    parse_id,
)
from workspaces import permissions
from workspaces.models import Workspace


class NotFoundIfMissing:
    """A related field that answers 404 for an id the caller cannot see, exactly as for one that does not exist."""

    not_found = "No such {name}."

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            raise exceptions.NotFound(self.not_found.format(name=self.field_name)) from None


class DocumentField(NotFoundIfMissing, serializers.PrimaryKeyRelatedField):
    # The same words as validate() uses for another workspace's document.
    not_found = "No such document."


class WorkspaceSlugField(NotFoundIfMissing, serializers.SlugRelatedField):
    pass


class AssistantField(NotFoundIfMissing, serializers.PrimaryKeyRelatedField):
    pass


class AssistantSerializer(StrictModelSerializer):
    workspace = WorkspaceSlugField(slug_field="slug", queryset=Workspace.objects.none())
    model = StrictCharField(source="model_name", required=False, allow_blank=True, max_length=100)
    all_documents = StrictBooleanField(required=False)
    answer_without_sources = StrictBooleanField(required=False)
    archived = StrictBooleanField(required=False)
    starter_questions = serializers.ListField(
        child=StrictCharField(max_length=MAX_STARTER_CHARS, trim_whitespace=True),
        max_length=MAX_STARTERS,
        required=False,
        help_text="Suggested questions offered on an empty chat.",
    )

    class Meta:
        model = Assistant
        fields = [
            "id",
            "workspace",
            "name",
            "description",
            "instructions",
            "starter_questions",
            "model",
            "temperature",
            "max_tokens",
            "all_documents",
            "documents",
            "passages",
            "answer_without_sources",
            "archived",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        self.fields["workspace"].queryset = Workspace.objects.for_user(user)
        from documents.models import Document

        # A missing id and another workspace's id both end in the same 404 "No such document.", whatever the
        # other fields hold: DocumentField for a document of no workspace of the user's, validate() for one of
        # another of their workspaces (which they know of anyway). So ids leak nothing.
        self.fields["documents"] = StrictManyRelatedField(
            child_relation=DocumentField(queryset=Document.objects.for_user(user)), required=False
        )
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            self.fields["workspace"].read_only = True

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError("Give the assistant a name.")
        return value.strip()

    def validate_model(self, value):
        if value and value not in dict(model_choices()):
            raise serializers.ValidationError(f"Unknown model {value!r}.")
        return value

    def validate(self, attrs):
        workspace = attrs.get("workspace") or getattr(self.instance, "workspace", None)
        for document in attrs.get("documents", []):
            if workspace is None or document.workspace_id != workspace.pk:
                # Another workspace's document: as if it did not exist.
                raise exceptions.NotFound("No such document.")
        all_documents = attrs.get("all_documents", getattr(self.instance, "all_documents", True))
        documents = attrs.get("documents", None)
        if documents is None and self.instance is not None:
            documents = list(self.instance.documents.all())
        if all_documents is False and not documents:
            raise serializers.ValidationError({"documents": ["Choose at least one document, or set all_documents."]})
        return attrs


class CitationSerializer(serializers.Serializer):
    n = serializers.IntegerField()
    document_id = serializers.IntegerField()
    title = serializers.CharField()
    location = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    snippet = serializers.CharField()
    score = serializers.FloatField()
    url = serializers.CharField()


class MessageSerializer(serializers.ModelSerializer):
    """A message; an answer also says which question it answers and which of its versions it is."""

    citations = CitationSerializer(many=True, read_only=True)
    tokens = serializers.IntegerField(source="total_tokens", read_only=True)
    question = serializers.IntegerField(source="question_id", read_only=True, allow_null=True)
    version = serializers.SerializerMethodField()
    version_count = serializers.SerializerMethodField()

    def get_version(self, message) -> int:
        return getattr(message, "version", 1)

    def get_version_count(self, message) -> int:
        return getattr(message, "version_count", 1)

    class Meta:
        model = Message
        fields = [
            "id",
            "role",
            "question",
            "current",
            "version",
            "version_count",
            "content",
            "status",
            "error",
            "citations",
            "model_name",
            "prompt_tokens",
            "completion_tokens",
            "tokens",
            "cost",
            "latency_ms",
            "cache_hit",
            "feedback",
            "feedback_comment",
            "created_at",
        ]
        read_only_fields = fields


class ConversationSerializer(StrictModelSerializer):
    assistant = AssistantField(queryset=Assistant.objects.none())
    title = StrictCharField(required=False, allow_blank=True, max_length=200, trim_whitespace=True)
    pinned = StrictBooleanField(required=False)

    class Meta:
        model = Conversation
        fields = ["id", "assistant", "title", "pinned", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        self.fields["assistant"].queryset = Assistant.objects.for_user(getattr(request, "user", None))
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            # Rename and pin; a conversation never moves to another assistant.
            self.fields["assistant"].read_only = True


class AskSerializer(serializers.Serializer):
    content = StrictCharField(allow_blank=True, trim_whitespace=True, max_length=answering.MAX_QUESTION_CHARS)
    stream = StrictBooleanField(required=False, default=False)
    regenerate = StrictBooleanField(required=False, default=False)
    answer = serializers.IntegerField(
        required=False, min_value=1, help_text="With regenerate: the answer to redo (default: the latest)."
    )


class RegenerateSerializer(serializers.Serializer):
    stream = StrictBooleanField(required=False, default=False)


class FeedbackSerializer(serializers.Serializer):
    feedback = serializers.ChoiceField(choices=["up", "down", ""])
    comment = StrictCharField(max_length=1000, required=False, allow_blank=True)


class EventStreamRenderer(BaseRenderer):
    """Lets a client ask for `Accept: text/event-stream` where an answer streams (OffersEventStream).

    The stream itself is a StreamingHttpResponse; a Response (an error, a JSON answer) is answered as JSON.
    """

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data, renderer_context=renderer_context)


class OffersEventStream:
    """Only a POST of `stream_actions` offers `text/event-stream` (its streamed answer); every other action
    answers JSON (406 for a client that takes only event streams), and so does every error."""

    stream_actions = ()

    def get_renderers(self):
        renderers = super().get_renderers()
        request = getattr(self, "request", None)
        if self.action in self.stream_actions and request is not None and request.method == "POST":
            renderers.append(EventStreamRenderer())
        return renderers

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(getattr(response, "accepted_renderer", None), EventStreamRenderer):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


class AssistantViewSet(viewsets.ModelViewSet):
    """Assistants of the caller's workspaces. Viewers read; members create, and edit and delete their own;
    admins and owners edit and delete any."""

    lookup_value_regex = ID_PATTERN  # ASCII digits: other scripts' digits are not ids

    serializer_class = AssistantSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Assistant.objects.none()
        qs = Assistant.objects.for_user(self.request.user).select_related("workspace").prefetch_related("documents")
        slug = self.request.query_params.get("workspace")
        if slug:
            qs = qs.filter(workspace__slug=slug)
        return qs.order_by("workspace__slug", "name")

    def _check(self, workspace, action_name, obj=None):
        reason = permissions.why_not(self.request.user, action_name, workspace, obj)
        if reason:
            raise exceptions.PermissionDenied(reason)

    def get_object(self):
        assistant = super().get_object()
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            self._check(assistant.workspace, "edit_assistants", assistant)
        return assistant

    def perform_create(self, serializer):
        self._check(serializer.validated_data["workspace"], "create_assistant")
        serializer.save(created_by=self.request.user)

    def perform_update(self, serializer):
        # A new version (no cached answer of the old one served) only when what answers depend on changed.
        before = serializer.instance.answer_settings()
        with transaction.atomic():
            assistant = serializer.save()
            if assistant.answer_settings() != before:
                assistant.bump_version()


class ConversationViewSet(
    OffersEventStream,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own conversations, pinned first, then newest (?assistant=<id>, ?q=<text in title or messages>).

    PATCH renames ("title") and pins ("pinned"); GET …/export/?as=md|json exports one;
    POST …/messages/ asks a question and returns (or streams) the answer.
    """

    lookup_value_regex = ID_PATTERN  # ASCII digits: other scripts' digits are not ids

    serializer_class = ConversationSerializer
    stream_actions = ("messages",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        qs = Conversation.objects.of_user(self.request.user).select_related("assistant__workspace")
        assistant = self.request.query_params.get("assistant")
        if assistant:
            assistant_id = parse_id(assistant)
            qs = qs.filter(assistant_id=assistant_id) if assistant_id is not None else qs.none()
        query = self.request.query_params.get("q", "").strip()[:200]
        if query:
            in_messages = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=query)
            qs = qs.filter(Q(title__icontains=query) | Exists(in_messages))
        return qs.order_by("-pinned", "-updated_at")

    def get_object(self):
        """The caller's own conversation, through the permission module (anyone else's: 404)."""
        pk = parse_id(self.kwargs.get("pk"))
        if pk is None:
            raise exceptions.NotFound()
        queryset = Conversation.objects.select_related("assistant__workspace")
        # Reading, renaming, pinning and deleting one's own conversation need only to be a member;
        # asking in it also needs the "chat" action (checked where a question is asked).
        return permissions.get_own_object_for(self.request.user, queryset, "view", pk=pk)

    @extend_schema(
        parameters=[OpenApiParameter("as", str, enum=["md", "json"], description="md (default) or json")],
        responses={(200, "text/markdown"): str, (200, "application/json"): dict},
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer])
    def export(self, request, pk=None):
        """The conversation as it reads, as Markdown or JSON, for download."""
        from django.http import HttpResponse

        from assistants.conversations import EXPORT_FORMATS, export_data, export_markdown

        fmt = request.query_params.get("as", "md")
        if fmt not in EXPORT_FORMATS:
            raise exceptions.ValidationError({"as": ["Choose md or json."]})
        conversation = self.get_object()
        data = export_data(conversation)
        if fmt == "json":
            return Response(data)
        return HttpResponse(export_markdown(data), content_type=EXPORT_FORMATS["md"])

    def perform_create(self, serializer):
        assistant = serializer.validated_data["assistant"]
        reason = permissions.why_not(self.request.user, "chat", assistant.workspace)
        if reason:
            raise exceptions.PermissionDenied(reason)
        serializer.save(user=self.request.user)

    @extend_schema(methods=["GET"], responses=MessageSerializer(many=True), parameters=[OpenApiParameter("page", int)])
    @extend_schema(methods=["POST"], request=AskSerializer, responses={201: MessageSerializer})
    @action(detail=True, methods=["get", "post"])
    def messages(self, request, pk=None):
        conversation = self.get_object()
        if request.method == "GET":
            # The conversation as it reads: questions, each followed by its current answer.
            page = self.paginate_queryset(conversation.messages.shown().with_versions())
            answering.interrupt_if_stale(page)
            return self.get_paginated_response(MessageSerializer(page, many=True).data)
        assistant = conversation.assistant
        reason = permissions.why_not(request.user, "chat", assistant.workspace)
        if reason:
            raise exceptions.PermissionDenied(reason)
        ask = AskSerializer(data=request.data)
        ask.is_valid(raise_exception=True)
        redo = None
        if "answer" in ask.validated_data:
            redo = conversation.messages.filter(pk=ask.validated_data["answer"], role=Role.ASSISTANT).first()
            if redo is None:
                raise exceptions.NotFound("No such answer in this conversation.")
        return answer_turn(
            request,
            lambda: answering.start_turn(
                assistant,
                conversation,
                request.user,
                ask.validated_data["content"],
                regenerate=ask.validated_data["regenerate"],
                answer=redo,
            ),
            ask.validated_data["stream"],
        )


def _prefers_event_stream(accept):
    """Whether the client would rather have the answer's event stream than its JSON.

    Each of the two takes the q of the most specific Accept range that matches it (q=0 refuses it); the
    higher q wins. At the same q, a client that names `text/event-stream` itself gets it (streaming
    clients send "application/json, text/event-stream"); `*/*` alone, a missing or unreadable Accept is JSON.
    """
    ranges = []
    for token in (accept or "").split(","):
        try:
            full_type, params = parse_header_parameters(token.strip())
            q = float(params.get("q", 1))
        except ValueError:
            continue
        main, _, sub = full_type.partition("/")
        if main and sub and (main != "*" or sub == "*") and 0 <= q <= 1:
            ranges.append((main, sub, q))

    def preference(media_type):
        """(q, specificity of the range that gave it): (0, 0) when the client does not take the type."""
        main, sub = media_type.split("/")
        matching = [
            ((r_main != "*") + (r_sub != "*"), q)
            for r_main, r_sub, q in ranges
            if r_main in ("*", main) and r_sub in ("*", sub)
        ]
        if not matching:
            return (0, 0)
        specificity, q = max(matching, key=lambda m: m[0])
        return (q, specificity) if q > 0 else (0, 0)

    stream_q, named = preference("text/event-stream")
    json_q, _ = preference("application/json")
    return stream_q > json_q or (stream_q == json_q > 0 and named == 2)


def answer_turn(request, start, stream):
    """Start a turn and return the stored answer as JSON (201), or stream it as server-sent events.

    A refused request keeps the gateway's status (a limit's 429 with Retry-After, 403 for an archived
    workspace); an upstream failure is a 502 (or 503, 504). The streamed variant's `error` event carries
    the same: {"detail", "status", "retry_after"}.
    """
    try:
        turn = start()
    except answering.AnswerError as exc:
        return Response({exc.field or "detail": [exc.message]}, status=exc.status)
    if stream or _prefers_event_stream(request.headers.get("Accept")):
        from assistants.views import stream_turn

        return stream_turn(request, turn, render_html=False)
    try:
        message = turn.run()
    except answering.AnswerError as exc:
        response = Response({"detail": exc.message}, status=exc.status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class MessageFeedbackViewSet(OffersEventStream, viewsets.GenericViewSet):
    """The caller's own answers: feedback, regenerate, and their versions."""

    lookup_value_regex = ID_PATTERN  # ASCII digits: other scripts' digits are not ids

    serializer_class = FeedbackSerializer
    stream_actions = ("regenerate",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        # with_versions(): the answer's ‹ n/m › in the same query, for the feedback answered with it.
        return (
            Message.objects.for_user(self.request.user)
            .filter(conversation__user=self.request.user, role=Role.ASSISTANT)
            .with_versions()
        )

    @extend_schema(request=FeedbackSerializer, responses=MessageSerializer)
    @action(detail=True, methods=["post"])
    def feedback(self, request, pk=None):
        message = self.get_object()
        serializer = FeedbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        message.feedback = serializer.validated_data["feedback"]
        message.feedback_comment = serializer.validated_data.get("comment", "")
        message.save(update_fields=["feedback", "feedback_comment"])
        return Response(MessageSerializer(message).data)

    def _own_answer(self, pk, action_name="chat"):
        queryset = Message.objects.filter(role=Role.ASSISTANT).select_related("conversation__assistant__workspace")
        pk = parse_id(pk)
        if pk is None:
            raise exceptions.NotFound()
        return permissions.get_own_object_for(
            self.request.user, queryset, action_name, owner="conversation__user", pk=pk
        )

    @extend_schema(request=RegenerateSerializer, responses={201: MessageSerializer})
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        """Answer this answer's question again, with the history before it; a new current version."""
        answer = self._own_answer(pk)
        options = RegenerateSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        conversation = answer.conversation
        return answer_turn(
            request,
            lambda: answering.start_turn(
                conversation.assistant, conversation, request.user, "", regenerate=True, answer=answer
            ),
            options.validated_data["stream"],
        )

    @extend_schema(responses=MessageSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)  # every version at once: a bare list, no `page`
    def versions(self, request, pk=None):
        """Every version of this answer, oldest first; `current` marks the one shown."""
        answer = self._own_answer(pk, "view")
        if answer.question_id is None:
            versions = Message.objects.filter(pk=answer.pk).with_versions()
        else:
            versions = Message.objects.filter(question_id=answer.question_id, role=Role.ASSISTANT).with_versions()
        versions = list(versions.order_by("pk"))
        answering.interrupt_if_stale(versions)
        return Response(MessageSerializer(versions, many=True).data)

    @extend_schema(request=None, responses=MessageSerializer)
    @action(detail=True, methods=["post"])
    def show(self, request, pk=None):
        """Make this version the one shown for its question."""
        answer = self._own_answer(pk)
        answer.make_current()
        answer = Message.objects.with_versions().get(pk=answer.pk)
        answering.interrupt_if_stale([answer])
        return Response(MessageSerializer(answer).data)
