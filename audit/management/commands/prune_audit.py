from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent


def prune(days, *, dry_run=False, now=None):
    """Delete the audit events older than `days` days; (count, cut-off)."""
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = AuditEvent.objects.older_than(cutoff)
    if dry_run:
        return old.count(), cutoff
    with transaction.atomic():
        return old.prune(), cutoff


class Command(BaseCommand):
    help = "Delete audit events older than AUDIT_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=None, help="keep this many days (default: AUDIT_RETENTION_DAYS)"
        )
        parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")

    def handle(self, *args, days=None, dry_run=False, **options):
        days = settings.AUDIT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1.")
        count, cutoff = prune(days, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(
            f"{verb} {count} audit event{'s' if count != 1 else ''} older than {cutoff:%Y-%m-%d %H:%M} UTC ({days} days)."
        )
