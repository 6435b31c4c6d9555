import getpass
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email


def create_user(email, password, *, staff=False, full_name=""):
    User = get_user_model()
    try:
        validate_email(email)
    except ValidationError:
        raise CommandError(f"{email!r} is not a valid email address") from None
    if User.objects.filter(email__iexact=email).exists():
        raise CommandError(f"A user with the email {email} already exists")
    try:
        validate_password(password, User(email=email))
    except ValidationError as exc:
        raise CommandError("Password refused: " + " ".join(exc.messages)) from None
    return User.objects.create_user(
        email=email, password=password, full_name=full_name, is_staff=staff, is_superuser=staff
    )


class Command(BaseCommand):
    help = "Create a user. The password comes from CORPORATE_PASSWORD, or a prompt on a terminal."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--staff", action="store_true", help="a staff superuser who may use the admin")
        parser.add_argument("--name", default="", help="full name")

    def handle(self, email, staff, name, **options):
        password = os.environ.get("CORPORATE_PASSWORD")
        if password is None:
            if not sys.stdin.isatty():
                raise CommandError("Set CORPORATE_PASSWORD, or run on a terminal to be asked for the password")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The two passwords differ")
        user = create_user(email.strip(), password, staff=staff, full_name=name)
        self.stdout.write(f"Created {'staff user' if user.is_staff else 'user'} {user.email}")
