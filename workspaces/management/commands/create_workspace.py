from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from workspaces import services
from workspaces.models import SLUG_VALIDATOR


class Command(BaseCommand):
    help = "Create a workspace owned by an existing user."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--owner", required=True, help="email of the owner")
        parser.add_argument("--name", help="display name (default: the slug)")
        parser.add_argument("--description", default="")

    def handle(self, slug, owner, name, description, **options):
        try:
            SLUG_VALIDATOR(slug)
        except ValidationError as exc:
            raise CommandError(f"Bad slug {slug!r}: {exc.messages[0]}") from None
        user = get_user_model().objects.filter(email__iexact=owner).first()
        if user is None:
            raise CommandError(f"No user with the email {owner}")
        name = (name or slug.replace("-", " ").title()).strip()
        if not name or len(name) > 100:
            raise CommandError("The name must be 1 to 100 characters")
        try:
            workspace = services.create_workspace(user, name=name, slug=slug, description=description)
        except services.WorkspaceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Created workspace {workspace.slug} ({workspace.name}) owned by {user.email}")
