from django.core.management.base import BaseCommand

from twofactor.models import Requirement, TwoFactorPolicy


def set_requirement(value):
    policy = TwoFactorPolicy.current()
    policy.required = value
    policy.save(update_fields=["required", "updated_at"])
    return policy


class Command(BaseCommand):
    help = "Require two-factor sign-in for every local account, or for staff only (applies at their next sign-in)."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--staff-only", action="store_true", help="only staff and superusers")
        group.add_argument("--off", action="store_true", help="make it optional again")

    def handle(self, *args, **options):
        value = Requirement.NONE if options["off"] else Requirement.STAFF if options["staff_only"] else Requirement.ALL
        policy = set_requirement(value)
        self.stdout.write(f"Two-factor sign-in: {policy.get_required_display().lower()}.")
