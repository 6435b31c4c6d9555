from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from llmgateway.metering import reports


class Command(BaseCommand):
    help = "Delete usage records and hourly totals older than USAGE_RETENTION_DAYS; the daily totals are kept."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, help="keep this many days (default: the setting)")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, days=None, dry_run=False, **options):
        days = days or settings.USAGE_RETENTION_DAYS
        before = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
        rows, hours = reports.prune(before, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {rows} usage record(s) and {hours} hourly total(s) older than {before:%Y-%m-%d}; "
            "the daily totals stay."
        )
