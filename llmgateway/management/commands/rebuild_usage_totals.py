from django.core.management.base import BaseCommand, CommandError

from llmgateway.metering import records, totals
from workspaces.models import Workspace


class Command(BaseCommand):
    help = (
        "Recompute the hourly and daily usage totals from the usage records (of one workspace, or all): "
        "the days from the oldest record on; older days, whose records were pruned, keep their totals."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="the workspace's slug (default: every workspace)")

    def handle(self, slug=None, **options):
        workspace = None
        if slug:
            workspace = Workspace.objects.filter(slug=slug).first()
            if workspace is None:
                raise CommandError(f"No workspace with the slug {slug!r}.")
        records.drain()
        hours, days = totals.rebuild(workspace)
        self.stdout.write(f"Rebuilt {hours} hourly and {days} daily usage total(s) of {slug or 'every workspace'}.")
