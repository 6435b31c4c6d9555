"""Documents and their passages (chunks).

Interfaces other apps rely on (keep them stable):

- `Document.objects.for_user(user)` — the documents of the user's workspaces;
  `Document.objects.in_workspace(workspace)`.
- `Document.status`: "queued" → "processing" → "ready" or "failed"
  (`failure_reason` says why, in words a person can read).
- `Document.content_version` — a short string that changes whenever the
  document's searchable content changes (its sha256 plus `version`, which
  grows on every successful processing); use it in cache keys.
- `Chunk`: `document`, `workspace`, `position` (0-based order in the
  document), `text`, `page` (1-based PDF page, or None), `section` (heading,
  "rows 2–26", …), `start`/`end` (character offsets in the extracted text),
  `token_estimate`. `Chunk.location` is the human form ("page 3").
  `Chunk.get_absolute_url()` opens the document page at the passage.

The search index is not a model field: SQLite keeps an FTS5 table and
PostgreSQL a generated tsvector column, both created by migration 0002 and
kept in sync by the database itself (see documents/search.py).
"""

import uuid

from django.conf import settings
from django.core.files.storage import storages
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from workspaces.permissions import WorkspaceOwnedQuerySet


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


ACTIVE_STATUSES = (Status.QUEUED, Status.PROCESSING)


class Kind(models.TextChoices):
    PDF = "pdf", "PDF"
    DOCX = "docx", "Word (DOCX)"
    TEXT = "text", "Plain text"
    MARKDOWN = "markdown", "Markdown"
    HTML = "html", "HTML"
    CSV = "csv", "CSV"


CONTENT_TYPES = {
    Kind.PDF: "application/pdf",
    Kind.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    Kind.TEXT: "text/plain",
    Kind.MARKDOWN: "text/markdown",
    Kind.HTML: "text/html",
    Kind.CSV: "text/csv",
}
EXTENSIONS = {
    Kind.PDF: ".pdf",
    Kind.DOCX: ".docx",
    Kind.TEXT: ".txt",
    Kind.MARKDOWN: ".md",
    Kind.HTML: ".html",
    Kind.CSV: ".csv",
}


def documents_storage():
    """The storage uploaded files live in: STORAGES["documents"] when configured, else the default."""
    return storages["documents"] if "documents" in settings.STORAGES else storages["default"]


def stored_name(instance, filename):
    """A generated name: never built from the user's file name."""
    return f"documents/{instance.workspace_id}/{uuid.uuid4().hex}{EXTENSIONS.get(instance.kind, '')}"


class DocumentQuerySet(WorkspaceOwnedQuerySet):
    def for_list(self):
        """The document list page: the uploader joined in, the long text columns left out."""
        return self.select_related("uploaded_by").defer("preview").order_by("-created_at", "-pk")

    def embedding_pending(self):
        """Ready documents whose passages wait for their vectors (the embedding model failed or changed)."""
        return self.filter(status=Status.READY).exclude(embedding_error="")

    def stalled(self, stale_seconds=None):
        """Documents whose worker stopped sending heartbeats while processing them."""
        stale_seconds = stale_seconds or settings.DOCUMENTS_STALE_SECONDS
        cutoff = timezone.now() - timezone.timedelta(seconds=stale_seconds)
        return self.filter(status=Status.PROCESSING).filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))

    def counts_by_status(self):
        """{status: count} over this queryset, every status present."""
        counts = dict.fromkeys(Status.values, 0)
        for row in self.order_by().values("status").annotate(n=models.Count("pk")):
            counts[row["status"]] = row["n"]
        return counts


class Document(models.Model):
    # Who may change it below an admin (workspaces/permissions.py).
    creator_field = "uploaded_by"

    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=255)
    original_name = models.CharField(max_length=255)
    file = models.FileField(upload_to=stored_name, storage=documents_storage, max_length=255)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    content_type = models.CharField(max_length=120)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    failure_reason = models.TextField(blank=True)
    # Progress while processing: pages (or parts) read so far of the total.
    pages_done = models.PositiveIntegerField(default=0)
    pages_total = models.PositiveIntegerField(default=0)
    page_count = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    char_count = models.PositiveIntegerField(default=0)
    preview = models.TextField(blank=True)
    # Processing bookkeeping: attempts doubles as the fencing token of the
    # worker that holds the document; heartbeat_at shows it is still alive.
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    version = models.PositiveIntegerField(default=0)
    # Search by meaning: the model whose vectors the passages have ('' none yet), or why they are pending.
    embedding_model = models.CharField(max_length=120, blank=True, default="")
    embedding_error = models.TextField(blank=True, default="")
    embedding_attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = DocumentQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "sha256"],
                name="%(app_label)s_%(class)s_unique_file",
                violation_error_message="This file is already in the workspace.",
            ),
            models.CheckConstraint(condition=Q(status__in=Status.values), name="%(app_label)s_%(class)s_known_status"),
        ]
        indexes = [
            # document list page: a workspace's documents, newest first.
            models.Index(fields=["workspace", "-created_at"], name="doc_ws_created"),
            # list filters and document_status: a workspace's documents by status / type.
            models.Index(fields=["workspace", "status"], name="doc_ws_status"),
            models.Index(fields=["workspace", "kind"], name="doc_ws_kind"),
            # stalled-worker sweep: the few documents being processed.
            models.Index(fields=["heartbeat_at"], name="doc_processing", condition=Q(status="processing")),
            # embedding retry sweep: the few ready documents whose embedding is pending, oldest try first.
            models.Index(
                fields=["updated_at"],
                name="doc_embedding_pending",
                condition=Q(status="ready") & ~Q(embedding_error=""),
            ),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("documents:detail", args=[self.workspace.slug, self.pk])

    @property
    def content_version(self):
        """Changes whenever the searchable content changes; for cache keys."""
        return f"{self.sha256[:16]}.{self.version}"

    @property
    def semantic_state(self):
        """ "ready", "pending" (with embedding_error) or "" (not embedded, e.g. lexical-only database)."""
        if self.embedding_error:
            return "pending"
        return "ready" if self.embedding_model else ""

    @property
    def embedding_retry_label(self):
        """When a pending embedding is tried again, in words ("in 4 minutes", "shortly")."""
        from django.utils.timesince import timeuntil

        from documents.ingestion import next_embedding_retry

        when = next_embedding_retry(self)
        seconds = (when - timezone.now()).total_seconds()
        if seconds < 30:
            return "shortly"
        if seconds < 3600:
            minutes = max(1, round(seconds / 60))
            return f"in {minutes} minute{'' if minutes == 1 else 's'}"
        return f"in {timeuntil(when)}"

    @property
    def is_active(self):
        return self.status in ACTIVE_STATUSES

    @property
    def is_final(self):
        return not self.is_active

    @property
    def progress_percent(self):
        if self.status == Status.READY:
            return 100
        if not self.pages_total:
            return 0
        return min(100, round(100 * self.pages_done / self.pages_total))


class ChunkQuerySet(WorkspaceOwnedQuerySet):
    pass


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # The document's workspace, copied so search filters without a join.
    workspace = models.ForeignKey("workspaces.Workspace", on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    text = models.TextField()
    page = models.PositiveIntegerField(null=True, blank=True)
    section = models.CharField(max_length=200, blank=True)
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    token_estimate = models.PositiveIntegerField()
    # The embedding model of this passage's vector ('' for none); the vector lives in documents/vectors.py's storage.
    embedding_model = models.CharField(max_length=120, blank=True, default="")

    objects = ChunkQuerySet.as_manager()

    class Meta:
        ordering = ["document", "position"]
        constraints = [
            models.UniqueConstraint(fields=["document", "position"], name="%(app_label)s_%(class)s_unique_pos"),
        ]
        indexes = [
            # search: restrict matches to one workspace.
            models.Index(fields=["workspace"], name="chunk_ws"),
        ]

    def __str__(self):
        return f"{self.document_id} #{self.position}"

    def get_absolute_url(self):
        return chunk_url(self.document.workspace.slug, self.document_id, self.pk)

    @property
    def location(self):
        return location_label(self.page, self.section)


def location_label(page, section):
    """How a citation names a passage: "page 3", "Travel booking", or ""."""
    if page:
        return f"page {page}"
    return section or ""


def chunk_url(slug, document_id, chunk_id):
    return reverse("documents:detail", args=[slug, document_id]) + f"?chunk={chunk_id}#chunk-{chunk_id}"
