"""Uploads, renames and deletions of documents go to the audit log (never their text)."""

from audit.tracking import track
from documents.models import Document


def _document_action(verb, document, changes):
    return {"create": "document.upload"}.get(verb)


track(
    Document,
    fields=["title", "original_name", "kind", "content_type", "size"],
    action=_document_action,
    describe=lambda document: document.title or document.original_name,
)
