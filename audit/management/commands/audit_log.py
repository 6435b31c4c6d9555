from django.core.management.base import BaseCommand, CommandError

from audit.export import csv_lines, json_lines
from audit.forms import AuditFilterForm
from audit.models import AuditEvent


def matching_events(*, slug=None, since=None, until=None, actor=None, action=None):
    """The events the filters select, newest first; CommandError names a bad filter."""
    form = AuditFilterForm(
        {
            "workspace": slug or "",
            "since": since or "",
            "until": until or "",
            "actor": actor or "",
            "action": action or "",
        },
        site_wide=True,
    )
    if not form.is_valid():
        problems = "; ".join(f"--{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        raise CommandError(problems.replace("--__all__: ", "").replace("--workspace", "SLUG"))
    return form.filter(AuditEvent.objects.all()).for_listing()


class Command(BaseCommand):
    help = "Print the audit log (a workspace's, or the whole site's) as CSV or JSON, newest first."

    def add_arguments(self, parser):
        parser.add_argument("slug", nargs="?", help="only this workspace's events")
        parser.add_argument("--since", help="from this day on (YYYY-MM-DD)")
        parser.add_argument("--until", help="up to and including this day (YYYY-MM-DD)")
        parser.add_argument("--actor", help="only what this email address did")
        parser.add_argument("--action", help="only this action, e.g. user.login_failed")
        parser.add_argument("--format", choices=["csv", "json"], default="csv")

    def handle(self, *args, slug=None, since=None, until=None, actor=None, action=None, format="csv", **options):
        events = matching_events(slug=slug, since=since, until=until, actor=actor, action=action)
        lines = csv_lines(events) if format == "csv" else json_lines(events)
        for line in lines:
            self.stdout.write(line, ending="")
