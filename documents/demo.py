"""Demo documents for `make run`: a fictional company's handbook, travel policy, IT FAQ, office guide and
expense limits (documents/demo_files/), uploaded into the demo workspace and queued for the worker."""

from pathlib import Path

from django.core.files import File

from documents import ingestion
from documents.models import Document

DEMO_FILES = Path(__file__).resolve().parent / "demo_files"
FILES = [
    ("employee-handbook.pdf", "Employee handbook 2026"),
    ("travel-policy.docx", "Travel policy"),
    ("it-faq.md", "IT FAQ"),
    ("office-guide.html", "Office guide"),
    ("expense-limits.csv", "Expense limits"),
]


def populate(admin):
    """Upload the demo files into the "demo" workspace (each once); no credentials to print."""
    from workspaces.models import Workspace

    workspace = Workspace.objects.filter(slug="demo").first()
    if workspace is None:
        return []
    for name, title in FILES:
        if Document.objects.in_workspace(workspace).filter(original_name=name).exists():
            continue
        with (DEMO_FILES / name).open("rb") as handle:
            try:
                ingestion.accept_upload(workspace, File(handle, name=name), admin, title=title)
            except ingestion.UploadRejected as exc:
                if exc.code != "duplicate":
                    raise
    return []
