import uuid

from django.core.management.base import BaseCommand

from corporate import installation
from corporate.models import Installation


def renew():
    """A new random installation id for this database; returns (old, new)."""
    old = installation.load()
    Installation.objects.filter(pk=1).update(uuid=uuid.uuid4())
    installation.forget()
    return old, installation.load()


class Command(BaseCommand):
    help = (
        "Give this database a new installation id, so its cache entries are its own. "
        "Run it on a copy of a database (a restored backup beside the original), then restart the copy's processes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="only show the current id")

    def handle(self, dry_run=False, **options):
        if dry_run:
            self.stdout.write(f"Installation id: {installation.load()} (unchanged).")
            return
        old, new = renew()
        self.stdout.write(f"Installation id {old} replaced by {new}; restart this site's processes to use it.")
