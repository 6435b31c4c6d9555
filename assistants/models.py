"""Assistants, their conversations and the messages in them.

- `Assistant.version` goes up on every edit of what its answers depend on
  (ANSWER_FIELDS, and its chosen set of documents); answers are cached per
  version, so an edited assistant never serves a stale answer.
- A `Message` from the assistant keeps its citations as a JSON list; each
  records the quoted document's `content_version`, so an old answer can
  show that its source has since changed or been deleted.
- Conversations are private to their user; workspace admins see usage
  (`Message` counts, tokens, cost), never content.
- An answer points at the question it answers. Regenerating an answer adds
  a new version for the same question and makes it the `current` one; the
  earlier versions stay, and the user may switch back to any of them. A
  conversation reads as its questions, each followed by its current answer.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from workspaces.permissions import WorkspaceOwnedQuerySet

MAX_QUESTION_CHARS = 4000
MAX_STARTERS = 6
MAX_STARTER_CHARS = 200


def validate_starter_questions(value):
    """A short list of short questions, offered on an empty chat."""
    if not isinstance(value, list) or not all(isinstance(q, str) for q in value):
        raise ValidationError("Give a list of questions.")
    if len(value) > MAX_STARTERS:
        raise ValidationError(f"At most {MAX_STARTERS} starter questions; there are {len(value)}.")
    for question in value:
        if not question.strip():
            raise ValidationError("A starter question is empty.")
        if len(question) > MAX_STARTER_CHARS:
            raise ValidationError(
                f"A starter question is {len(question)} characters long; the limit is {MAX_STARTER_CHARS}."
            )
        if "\x00" in question:
            raise ValidationError("A starter question contains a NUL character.")


class AssistantQuerySet(WorkspaceOwnedQuerySet):
    def active(self):
        return self.filter(archived=False)


class Assistant(models.Model):
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="assistants")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    instructions = models.TextField(
        blank=True,
        max_length=8000,
        help_text="What the assistant is for and how it should answer. Document passages can never override this.",
    )
    model_name = models.CharField("model", max_length=100, blank=True, help_text="Empty: the default model.")
    temperature = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(2.0)])
    max_tokens = models.PositiveIntegerField(
        "max answer tokens", default=800, validators=[MinValueValidator(16), MaxValueValidator(8192)]
    )
    all_documents = models.BooleanField(
        "use all of the workspace's documents", default=True, help_text="Off: only the documents chosen below."
    )
    documents = models.ManyToManyField("documents.Document", blank=True, related_name="assistants")
    passages = models.PositiveSmallIntegerField(
        "passages to retrieve", default=5, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    starter_questions = models.JSONField(
        "suggested questions",
        default=list,
        blank=True,
        validators=[validate_starter_questions],
        help_text=f"Offered on an empty chat; one per line, up to {MAX_STARTERS}.",
    )
    answer_without_sources = models.BooleanField(
        "may answer without a supporting passage",
        default=False,
        help_text="Off: when no passage matches, the assistant says so instead of answering from general knowledge.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    archived = models.BooleanField(default=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = AssistantQuerySet.as_manager()

    # Who may change it below an admin (workspaces/permissions.py).
    creator_field = "created_by"

    class Meta:
        ordering = ["name"]
        indexes = [
            # assistants page: a workspace's assistants, active first, by name.
            models.Index(fields=["workspace", "archived", "name"], name="assistant_ws_list"),
        ]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("assistants:chat", args=[self.workspace.slug, self.pk])

    # What its answers depend on (the prompt, the model and its settings, the passages searched, with the
    # documents): an edit of one makes a new version. The description, starter questions and archiving do not.
    ANSWER_FIELDS = (
        "name",
        "instructions",
        "model_name",
        "temperature",
        "max_tokens",
        "all_documents",
        "passages",
        "answer_without_sources",
    )

    def answer_settings(self):
        """ANSWER_FIELDS' values and the documents' ids, to compare before and after an edit."""
        return [getattr(self, name) for name in self.ANSWER_FIELDS], sorted(d.pk for d in self.documents.all())

    def bump_version(self):
        """A new version: cached answers of the old one are never served again."""
        Assistant.objects.filter(pk=self.pk).update(version=F("version") + 1)
        self.refresh_from_db(fields=["version"])


class ConversationQuerySet(WorkspaceOwnedQuerySet):
    workspace_path = "assistant__workspace"

    def of_user(self, user):
        """Conversations are private: only their owner sees them."""
        return self.for_user(user).filter(user=user)

    def for_sidebar(self, user, assistant, query=""):
        """The chat page's list: the user's conversations with the assistant, pinned first, then newest.

        `query` keeps those whose title or any message contains it (one query either way).
        """
        qs = self.of_user(user).filter(assistant=assistant)
        query = (query or "").strip()
        if query:
            in_messages = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=query)
            qs = qs.filter(Q(title__icontains=query) | Exists(in_messages))
        return qs.only("pk", "title", "pinned", "updated_at", "assistant_id").order_by("-pinned", "-updated_at")


class Conversation(models.Model):
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    pinned = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            # chat page sidebar: the user's conversations with one assistant, pinned first, then newest.
            models.Index(fields=["assistant", "user", "-pinned", "-updated_at"], name="conversation_sidebar_pinned"),
        ]

    def __str__(self):
        return self.title or f"Conversation {self.pk}"

    def get_absolute_url(self):
        return reverse("assistants:conversation", args=[self.assistant.workspace.slug, self.assistant_id, self.pk])


class Role(models.TextChoices):
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    STREAMING = "streaming", "Streaming"
    INTERRUPTED = "interrupted", "Interrupted"
    FAILED = "failed", "Failed"


class Feedback(models.TextChoices):
    UP = "up", "Helpful"
    DOWN = "down", "Not helpful"


class MessageQuerySet(WorkspaceOwnedQuerySet):
    workspace_path = "conversation__assistant__workspace"

    def shown(self):
        """The conversation as it reads: each question followed by its current answer."""
        return self.filter(Q(role=Role.USER) | Q(current=True)).order_by(Coalesce("question_id", "id"), "pk")

    def with_versions(self):
        """Annotate answers with their place among their question's answers, for the ‹ 2/3 › switcher.

        `version` (1, 2, …), `version_count`, and the ids of the `previous_version_id` and
        `next_version_id`: correlated subqueries in the same query, so the count of queries stays
        constant however many versions exist.
        """
        siblings = Message.objects.filter(question_id=OuterRef("question_id"), role=Role.ASSISTANT).order_by()

        def count(qs):
            return Subquery(qs.values("question_id").annotate(n=Count("pk")).values("n")[:1])

        return self.annotate(
            version=Coalesce(count(siblings.filter(pk__lte=OuterRef("pk"))), Value(1)),
            version_count=Coalesce(count(siblings), Value(1)),
            previous_version_id=Subquery(siblings.filter(pk__lt=OuterRef("pk")).order_by("-pk").values("pk")[:1]),
            next_version_id=Subquery(siblings.filter(pk__gt=OuterRef("pk")).order_by("pk").values("pk")[:1]),
        )


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    # Answers only: the question answered, and whether this is the version shown of its answers.
    question = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="answers",
        limit_choices_to={"role": "user"},
    )
    current = models.BooleanField(default=True)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    error = models.CharField(max_length=500, blank=True)
    # [{"document_id", "title", "location", "page", "chunk_id", "snippet", "score", "version", "url"}]
    citations = models.JSONField(default=list, blank=True)
    # The exact messages sent to the model (assistant messages only), for audit.
    prompt = models.JSONField(default=list, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    assistant_version = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    cache_hit = models.BooleanField(default=False)
    feedback = models.CharField(max_length=8, choices=Feedback.choices, blank=True)
    feedback_comment = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            # conversation page: its messages in order.
            models.Index(fields=["conversation", "created_at"], name="message_conversation"),
            # versions of an answer: its question's answers in order.
            models.Index(fields=["question", "id"], name="message_versions"),
            # conversation page: its latest turns as it reads (shown() reversed, LIMIT 51), however long it is.
            models.Index(F("conversation"), Coalesce("question", "id"), F("id"), name="message_turns"),
            # the assistants' usage page: answers with feedback, per conversation (few of all answers).
            models.Index(
                fields=["conversation", "feedback"], condition=~models.Q(feedback=""), name="message_feedback"
            ),
            # the task worker's sweep: answers still streaming (those in flight, and any cut off), to mark
            # interrupted the ones past their deadline (assistants.answering.interrupt_stale_answers).
            models.Index(fields=["created_at"], condition=models.Q(status="streaming"), name="message_streaming"),
        ]

    def __str__(self):
        return f"{self.role}: {self.content[:60]}"

    def make_current(self):
        """Show this version of the answer to its question from now on."""
        with transaction.atomic():
            if self.question_id is not None:
                Message.objects.filter(question_id=self.question_id, role=Role.ASSISTANT).exclude(pk=self.pk).update(
                    current=False
                )
            Message.objects.filter(pk=self.pk).update(current=True)
        self.current = True

    @property
    def total_tokens(self):
        return self.prompt_tokens + self.completion_tokens
