import csv
import io
import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from llmgateway.metering import reports
from workspaces.models import Workspace

COLUMNS = [
    "label",
    "requests",
    "hits",
    "hit_rate",
    "prompt_tokens",
    "completion_tokens",
    "tokens",
    "cost",
    "refused",
    "errors",
]


def _date(value, flag):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{flag}: use a date like 2026-01-31, not {value!r}.") from None


def csv_rows(rows):
    """table_rows() for a CSV file: names (of assistants, keys, models) never start a spreadsheet formula."""
    from audit.export import spreadsheet_text

    return [{**row, "label": spreadsheet_text(row["label"])} for row in table_rows(rows)]


def table_rows(rows):
    return [
        {
            **{name: row[name] for name in COLUMNS},
            "hit_rate": "" if row["hit_rate"] is None else f"{row['hit_rate']:.4f}",
            "cost": f"{row['cost']:.6f}",
        }
        for row in rows
    ]


class Command(BaseCommand):
    help = "A workspace's usage in a date range, by user, model, key, assistant or day (table, CSV or JSON)."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the workspace's slug")
        parser.add_argument("--since", help="first day, YYYY-MM-DD (default: 29 days before --until)")
        parser.add_argument("--until", help="last day, YYYY-MM-DD (default: today)")
        parser.add_argument("--by", choices=reports.BREAKDOWNS, default="day")
        parser.add_argument("--format", choices=["table", "csv", "json"], default="table")

    def handle(self, slug, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug!r}.")
        since = _date(options["since"], "--since") if options["since"] else None
        until = _date(options["until"], "--until") if options["until"] else None
        if since and until and since > until:
            raise CommandError("--since must not be after --until.")
        usage = reports.usage_for(None, workspace, since, until)
        rows = reports.breakdown(usage, options["by"])
        data = table_rows(rows)
        total = table_rows([{**reports.totals(usage), "label": "total"}])[0]
        if options["format"] == "json":
            self.stdout.write(
                json.dumps({"workspace": slug, "by": options["by"], "rows": data, "total": total}, default=str)
            )
        elif options["format"] == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(csv_rows(rows))
            self.stdout.write(buffer.getvalue(), ending="")
        else:
            widths = {c: max(len(c), *(len(str(r[c])) for r in [*data, total])) for c in COLUMNS}
            line = lambda r: "  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS)  # noqa: E731
            self.stdout.write(line({c: c for c in COLUMNS}))
            for row in data:
                self.stdout.write(line(row))
            self.stdout.write(line(total))
