"""Assistants' creation, edits and deletion go to the audit log."""

from django.db.models.signals import m2m_changed
from django.dispatch import receiver

import audit
from assistants.models import Assistant
from audit.tracking import track

track(
    Assistant,
    fields=[
        "name",
        "description",
        "instructions",
        "model_name",
        "temperature",
        "max_tokens",
        "all_documents",
        "passages",
        "answer_without_sources",
        "archived",
    ],
)


@receiver(m2m_changed, sender=Assistant.documents.through, dispatch_uid="assistants.audit_documents")
def record_document_choice(sender, instance, action, reverse, pk_set, **kwargs):
    """The documents an assistant may draw on: which were added and removed (by id)."""
    if reverse or action not in {"post_add", "post_remove", "post_clear"}:
        return
    if action == "post_clear":
        details = {"cleared": True}
    else:
        details = {"added" if action == "post_add" else "removed": sorted(pk_set or [])}
        if not pk_set:
            return
    audit.record(None, "assistant.documents_change", obj=instance, details=details)
