from django.core.management.base import BaseCommand

from workspaces.models import Workspace, count_annotations


class Command(BaseCommand):
    help = "List every workspace with its counts of members, documents and assistants."

    def handle(self, **options):
        counts = count_annotations()
        rows = Workspace.objects.annotate(**counts).order_by("slug")
        columns = ["slug", "name", *counts, "archived"]
        self.stdout.write("\t".join(columns))
        total = 0
        for ws in rows:
            total += 1
            self.stdout.write("\t".join(str(getattr(ws, col)) for col in columns))
        self.stdout.write(f"{total} workspace{'s' if total != 1 else ''}")
