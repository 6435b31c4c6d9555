from django.core.management.base import BaseCommand
from django.db import transaction

from corporate import demo


class Command(BaseCommand):
    help = "Create demo users and data when the database is empty (safe to run again)."

    def handle(self, **options):
        with transaction.atomic():
            credentials = demo.populate()
        if not credentials:
            self.stdout.write("Demo data already present; nothing added.")
            return
        demo.record_credentials(credentials)
        bar = "=" * 64
        self.stdout.write(bar)
        self.stdout.write(f"Demo accounts (shown once; also saved to {demo.credentials_file()}):")
        for line in credentials:
            self.stdout.write("  " + line)
        self.stdout.write(bar)
