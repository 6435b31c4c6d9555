"""Assistants, their conversations and the messages in them.

- `Assistant.version` goes up on every edit (and when its chosen set of
  documents changes); answers are cached per version, so an edited
  assistant never serves a stale answer.
- A `Message` from the assistant keeps its citations as a JSON list; each
  records the quoted document's `content_version`, so an old answer can
  show that its source has since changed or been deleted.
- Conversations are private to their user; workspace admins see usage
  (`Message` counts, tokens, cost), never content.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from workspaces.permissions import WorkspaceOwnedQuerySet

MAX_QUESTION_CHARS = 4000


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

    def bump_version(self):
        """A new version: cached answers of the old one are never served again."""
        Assistant.objects.filter(pk=self.pk).update(version=F("version") + 1)
        self.refresh_from_db(fields=["version"])


class ConversationQuerySet(WorkspaceOwnedQuerySet):
    workspace_path = "assistant__workspace"

    def of_user(self, user):
        """Conversations are private: only their owner sees them."""
        return self.for_user(user).filter(user=user)


class Conversation(models.Model):
    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="conversations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ConversationQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            # chat page sidebar: the user's conversations with one assistant, newest first.
            models.Index(fields=["assistant", "user", "-updated_at"], name="conversation_sidebar"),
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


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
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
        ]

    def __str__(self):
        return f"{self.role}: {self.content[:60]}"

    @property
    def total_tokens(self):
        return self.prompt_tokens + self.completion_tokens
