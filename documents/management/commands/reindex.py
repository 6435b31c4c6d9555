"""manage.py reindex SLUG — read every document of a workspace again, only embed it again, or rebuild the index.

`--embeddings` embeds the passages of every ready document again with the
configured embedding model (after changing LLM_EMBEDDING_MODEL, or to catch
up documents whose embedding is pending); each one's content version grows,
so cached answers quoting it are not reused.
"""

from django.core.management.base import BaseCommand, CommandError

from documents import ingestion, search, vectors
from documents.models import Document, Status
from workspaces.models import Workspace


class Command(BaseCommand):
    help = "Queue every finished document of a workspace to be read, chunked and indexed again."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the workspace's slug")
        parser.add_argument("--dry-run", action="store_true", help="say what would be queued, change nothing")
        parser.add_argument(
            "--rebuild-index",
            action="store_true",
            help="only rebuild the full-text index, and add the vector column where pgvector is now installed",
        )
        parser.add_argument(
            "--embeddings", action="store_true", help="only embed the ready documents again (search by meaning)"
        )

    def handle(self, slug, dry_run, rebuild_index, embeddings, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug!r}")
        if rebuild_index:
            if not dry_run:
                search.rebuild()
                vectors.rebuild()
            self.stdout.write("Rebuilt the full-text index." if not dry_run else "Would rebuild the full-text index.")
            state = vectors.state()
            self.stdout.write(
                f"Search by meaning: {state.backend}." if state.available else f"Lexical only: {state.problem}"
            )
            return
        if embeddings:
            state = vectors.state()
            if not state.available:
                raise CommandError(f"This database cannot search by meaning: {state.problem}")
            ready = Document.objects.in_workspace(workspace).filter(status=Status.READY).order_by("pk")
            if dry_run:
                self.stdout.write(f"Would embed {ready.count()} document(s) of {workspace.slug}.")
                return
            results = [ingestion.embed_document(pk, force=True) for pk in ready.values_list("pk", flat=True)]
            self.stdout.write(
                f"Embedded {results.count('embedded')} document(s) of {workspace.slug}; "
                f"{results.count('pending')} pending (the embedding model failed), {results.count('skipped')} skipped."
            )
            return
        documents = Document.objects.in_workspace(workspace).filter(status__in=[Status.READY, Status.FAILED])
        if dry_run:
            self.stdout.write(f"Would queue {documents.count()} document(s) of {workspace.slug}.")
            return
        queued = sum(ingestion.reprocess(document) for document in documents.only("pk"))
        self.stdout.write(f"Queued {queued} document(s) of {workspace.slug} to be processed again.")
