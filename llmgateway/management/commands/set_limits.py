from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from llmgateway.metering import cli, configure
from llmgateway.models import ApiKey, LimitKind
from workspaces.models import Workspace


class Command(BaseCommand):
    help = (
        "Set a workspace's limits, a member's (--user EMAIL), each member's (--members) or a key's (--key PREFIX); "
        "an option set to 'none' removes that limit."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the workspace's slug")
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--user", help="email of a member: limits of that person in the workspace")
        who.add_argument("--members", action="store_true", help="limits of each member without their own")
        who.add_argument("--key", help="an API key's prefix (the 8 characters after gw_)")
        cli.add_limit_arguments(parser)

    def handle(self, slug, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug!r}.")
        where = {"workspace": workspace}
        kind = LimitKind.WORKSPACE
        if options["user"]:
            user = get_user_model().objects.filter(email__iexact=options["user"]).first()
            if user is None or not workspace.memberships.filter(user=user).exists():
                raise CommandError(f"--user: {options['user']} is not a member of {slug}.")
            kind, where = LimitKind.USER, {"workspace": workspace, "user": user}
        elif options["members"]:
            kind = LimitKind.USER
        elif options["key"]:
            prefix = options["key"].removeprefix("gw_").split("_")[0]
            key = ApiKey.objects.filter(workspace=workspace, prefix=prefix).first()
            if key is None:
                raise CommandError(f"--key: no key gw_{prefix}_… in {slug}.")
            kind, where = LimitKind.KEY, {"api_key": key}
        current = configure.limit_for(kind, **where)
        values = cli.limit_values(options, current)
        if not values:
            raise CommandError("Give at least one limit, e.g. --rpm 60 (or --rpm none to remove it).")
        try:
            saved = configure.save_limits(kind, values, **where)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        shown = saved.as_dict() if saved else {}
        summary = ", ".join(
            f"{name}={value / 1_000_000:g}" if name.endswith("budget") else f"{name}={value}"
            for name, value in shown.items()
        )
        self.stdout.write(f"Limits of {current}: {summary or 'none'}.")
