from django.core.management.base import BaseCommand, CommandError

from llmgateway.cache import entries
from workspaces.models import Workspace


class Command(BaseCommand):
    help = "Clear the completion cache of one workspace, or of all with --all."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?")
        parser.add_argument("--all", action="store_true", help="clear every workspace")

    def handle(self, slug=None, **options):
        if options["all"] == bool(slug):
            raise CommandError("Name one workspace, or pass --all.")
        if options["all"]:
            count = entries.clear_all()
            self.stdout.write(f"Cleared the cache of {count} workspace(s).")
            return
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug!r}.")
        entries.clear_workspace(workspace.pk)
        self.stdout.write(f"Cleared the cache of {workspace.slug}.")
