"""Demo data for a fresh installation.

`manage.py seed_demo` creates a demo admin when the database has no users,
then lets each app add its own demo objects through a `demo.populate(admin)`
function. Every step is idempotent: a second run adds nothing.
"""

import secrets
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model

DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_APPS = ["workspaces", "documents", "llmgateway", "assistants"]


def new_password():
    return secrets.token_urlsafe(12)


def credentials_file():
    return settings.VAR_DIR / "demo_credentials.txt"


def record_credentials(lines):
    path = credentials_file()
    with path.open("a") as handle:
        handle.writelines(line + "\n" for line in lines)
    path.chmod(0o600)


def ensure_admin():
    """The demo admin and its new password, or (None, None) if the database already has users."""
    User = get_user_model()
    if User.objects.exists():
        return User.objects.filter(email=DEMO_ADMIN_EMAIL).first(), None
    password = new_password()
    admin = User.objects.create_superuser(email=DEMO_ADMIN_EMAIL, password=password, full_name="Dana Admin")
    return admin, password


def populate():
    admin, password = ensure_admin()
    created = []
    if password:
        created.append(f"admin   {DEMO_ADMIN_EMAIL}   {password}")
    if admin is None:
        return created
    for app in DEMO_APPS:
        try:
            module = import_module(f"{app}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app}.demo":
                raise
            continue
        created.extend(module.populate(admin) or [])
    return created
