"""manage.py document_status [SLUG] — documents by status, per workspace; requeues stalled ones."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from documents import ingestion
from documents.models import Document, Status
from workspaces.models import Workspace


class Command(BaseCommand):
    help = "Count documents by status, per workspace (and recover documents whose worker died)."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="only this workspace")

    def handle(self, slug=None, **options):
        workspaces = Workspace.objects.order_by("slug")
        if slug:
            workspaces = workspaces.filter(slug=slug)
            if not workspaces.exists():
                raise CommandError(f"No workspace with the slug {slug!r}")
        recovered = ingestion.recover_stalled()
        retried = ingestion.catch_up_embeddings()
        counts = {workspace.slug: dict.fromkeys(Status.values, 0) for workspace in workspaces}
        rows = Document.objects.filter(workspace__in=workspaces).order_by().values_list("workspace__slug", "status")
        for workspace_slug, status, n in rows.annotate(n=Count("pk")).values_list("workspace__slug", "status", "n"):
            counts[workspace_slug][status] = n
        width = max([len("workspace"), *(len(s) for s in counts)])
        self.stdout.write(f"{'workspace':<{width}}  " + "  ".join(f"{s:>10}" for s in Status.values))
        totals = dict.fromkeys(Status.values, 0)
        for workspace_slug, by_status in counts.items():
            self.stdout.write(f"{workspace_slug:<{width}}  " + "  ".join(f"{by_status[s]:>10}" for s in Status.values))
            for status in Status.values:
                totals[status] += by_status[status]
        if len(counts) > 1:
            self.stdout.write(f"{'total':<{width}}  " + "  ".join(f"{totals[s]:>10}" for s in Status.values))
        if recovered:
            self.stdout.write(f"Recovered {recovered} document(s) whose worker had stopped.")
        if retried:
            self.stdout.write(f"Queued {retried} overdue embedding retry(ies) (search by meaning).")
