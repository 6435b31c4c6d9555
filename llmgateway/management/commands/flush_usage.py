from django.core.management.base import BaseCommand

from llmgateway.metering import records


class Command(BaseCommand):
    help = "Write buffered usage records to the database now (the task worker does it every USAGE_FLUSH_SECONDS)."

    def handle(self, **options):
        written = records.drain()
        self.stdout.write(f"Wrote {written} usage record(s); {records.queued()} still queued.")
