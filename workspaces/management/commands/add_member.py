from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from workspaces.models import Membership, Workspace
from workspaces.roles import Role


class Command(BaseCommand):
    help = "Add a user to a workspace, or change their role if they are already a member."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("email")
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, slug, email, role, **options):
        workspace = Workspace.objects.filter(slug=slug).first()
        if workspace is None:
            raise CommandError(f"No workspace with the slug {slug}")
        user = get_user_model().objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No user with the email {email}")
        membership, created = Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
        if not created and membership.role != role:
            if membership.role == Role.OWNER and workspace.memberships.filter(role=Role.OWNER).count() == 1:
                raise CommandError("That user is the last owner; make someone else an owner first")
            membership.role = role
            membership.save(update_fields=["role"])
        verb = "Added" if created else "Updated"
        self.stdout.write(f"{verb} {user.email} in {workspace.slug} as {role}")
