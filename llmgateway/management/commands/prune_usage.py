from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from llmgateway.metering import reports


class Command(BaseCommand):
    help = "Delete usage records older than USAGE_RETENTION_DAYS; their hourly and daily totals are kept."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="keep this many days (default: the setting)")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, days=None, dry_run=False, **options):
        days = days or settings.USAGE_RETENTION_DAYS
        before = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
        rows = reports.prune(before, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {rows} usage record(s) older than {before:%Y-%m-%d}; their hourly and daily totals stay."
        )
