"""manage.py reindex SLUG — read every document of a workspace again (or only rebuild the search index)."""

from django.core.management.base import BaseCommand, CommandError

from documents import ingestion, search
from documents.models import Document, Status
from workspaces.models import Workspace


class Command(BaseCommand):
    help = "Queue every finished document of a workspace to be read, chunked and indexed again."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the workspace's slug")
        parser.add_argument("--dry-run", action="store_true", help="say what would be queued, change nothing")
        parser.add_argument(
            "--rebuild-index", action="store_true", help="only rebuild the full-text index (all workspaces)"
        )

    def handle(self, slug, dry_run, rebuild_index, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug!r}")
        if rebuild_index:
            if not dry_run:
                search.rebuild()
            self.stdout.write("Rebuilt the full-text index." if not dry_run else "Would rebuild the full-text index.")
            return
        documents = Document.objects.in_workspace(workspace).filter(status__in=[Status.READY, Status.FAILED])
        if dry_run:
            self.stdout.write(f"Would queue {documents.count()} document(s) of {workspace.slug}.")
            return
        queued = sum(ingestion.reprocess(document) for document in documents.only("pk"))
        self.stdout.write(f"Queued {queued} document(s) of {workspace.slug} to be processed again.")
