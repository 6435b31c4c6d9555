"""Demo workspace: the demo admin as owner, a member and a viewer."""

from django.contrib.auth import get_user_model

from corporate.demo import new_password
from workspaces.models import Membership, Workspace
from workspaces.roles import Role

DEMO_SLUG = "demo"
DEMO_USERS = [
    ("member@example.com", "Mia Member", Role.MEMBER),
    ("viewer@example.com", "Victor Viewer", Role.VIEWER),
]


def populate(admin):
    created = []
    workspace, new = Workspace.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={
            "name": "Brightwater (demo)",
            "description": "The demo company Brightwater: its HR, travel and IT policies, and a helpdesk assistant that answers from them.",
            "created_by": admin,
        },
    )
    Membership.objects.get_or_create(workspace=workspace, user=admin, defaults={"role": Role.OWNER})
    User = get_user_model()
    for email, name, role in DEMO_USERS:
        user = User.objects.filter(email=email).first()
        if user is None:
            password = new_password()
            user = User.objects.create_user(email=email, password=password, full_name=name)
            created.append(f"{role:<7} {email}   {password}")
        Membership.objects.get_or_create(workspace=workspace, user=user, defaults={"role": role})
    return created
