from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from llmgateway.metering import cli, configure
from llmgateway.models import ApiKey, LimitKind, Scope
from workspaces.models import Membership, Workspace


class Command(BaseCommand):
    help = "Create an API key for a workspace; the key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the workspace's slug")
        parser.add_argument("name", help="what the key is for")
        parser.add_argument(
            "--scope",
            action="append",
            choices=[s.value for s in Scope],
            help="repeat for several (default: completions)",
        )
        parser.add_argument("--expires-days", type=int, help="the key stops working after this many days")
        parser.add_argument("--user", help="email of the member the key acts for (default: an owner or admin)")
        cli.add_limit_arguments(parser)

    def handle(self, slug, name, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug!r}.")
        memberships = Membership.objects.filter(workspace=workspace).select_related("user")
        if options["user"]:
            membership = memberships.filter(user__email__iexact=options["user"]).first()
            if membership is None:
                raise CommandError(f"{options['user']} is not a member of {slug}.")
        else:
            membership = (
                memberships.filter(role__in=["owner", "admin"], user__is_active=True).order_by("joined_at").first()
            )
            if membership is None:
                raise CommandError(f"{slug} has no active owner or admin; pass --user.")
        if not membership.user.is_active:
            raise CommandError(f"{membership.user.email} is deactivated.")
        expires_at = None
        if options["expires_days"] is not None:
            if options["expires_days"] < 1:
                raise CommandError("--expires-days must be at least 1.")
            expires_at = timezone.now() + timedelta(days=options["expires_days"])
        values = cli.limit_values(options)
        with transaction.atomic():
            key, full = ApiKey.create(workspace, name, membership.user, scopes=options["scope"], expires_at=expires_at)
            if values:
                configure.save_limits(LimitKind.KEY, values, api_key=key)
        self.stderr.write(f"Created key {key.display_prefix} for {workspace.slug}, acting as {membership.user.email}.")
        self.stdout.write(full)
