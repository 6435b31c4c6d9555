import json

from django.core.management.base import BaseCommand, CommandError

from llmgateway.cache import stats
from workspaces.models import Workspace


def _pct(value):
    return "—" if value is None else f"{value * 100:.1f}%"


class Command(BaseCommand):
    help = "Show completion cache statistics, overall and per workspace."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="one workspace (default: overall and every workspace)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, slug=None, **options):
        if slug:
            workspace = Workspace.objects.filter(slug=slug).first()
            if workspace is None:
                raise CommandError(f"No workspace with the slug {slug!r}.")
            rows = [(workspace.slug, stats.summary(workspace.pk))]
        else:
            rows = [("(all)", stats.summary(None))]
            rows += [(ws.slug, stats.summary(ws.pk)) for ws in Workspace.objects.order_by("slug")]
        if options["json"]:
            self.stdout.write(json.dumps(dict(rows), indent=2))
            return
        header = f"{'workspace':24} {'requests':>9} {'hits':>7} {'misses':>7} {'coalesced':>9} {'hit rate':>8} {'tokens saved':>12} {'cost saved':>11} {'hit ms':>7} {'miss ms':>8}"
        self.stdout.write(header)
        for name, s in rows:
            self.stdout.write(
                f"{name[:24]:24} {s['requests']:>9} {s['hit']:>7} {s['miss']:>7} {s['coalesced']:>9} "
                f"{_pct(s['hit_rate']):>8} {s['tokens_saved']:>12} {s['cost_saved']:>11.4f} "
                f"{s['hit_latency_ms']['mean'] if s['hit_latency_ms']['mean'] is not None else '—':>7} "
                f"{s['miss_latency_ms']['mean'] if s['miss_latency_ms']['mean'] is not None else '—':>8}"
            )
