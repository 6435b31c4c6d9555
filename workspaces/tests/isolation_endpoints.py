from workspaces.models import Invitation, Membership
from workspaces.tests.isolation import Endpoint, Exempt


def setup(ctx):
    ws = ctx.workspace
    ctx.viewer_membership = Membership.objects.get(workspace=ws, user=ctx.users["viewer"])
    ctx.invitation = Invitation.objects.create(workspace=ws, email="new.hire@example.com", role="viewer")


def page(path):
    return lambda ctx: f"/workspaces/{ctx.workspace.slug}/{path}"


def api(path):
    return lambda ctx: f"/api/workspaces/{ctx.workspace.slug}/{path}"


def to(path):
    """Where a form post that succeeds redirects to."""
    return lambda ctx: f"/workspaces/{ctx.workspace.slug}/{path}"


ENDPOINTS = [
    # pages
    Endpoint("workspace overview page", "GET", page(""), "viewer"),
    Endpoint("members page", "GET", page("members/"), "viewer"),
    Endpoint("settings page", "GET", page("settings/"), "admin"),
    Endpoint(
        "save settings",
        "POST",
        page("settings/"),
        "admin",
        data=lambda ctx: {"name": "Renamed", "description": ""},
        redirect=to("settings/"),
    ),
    Endpoint(
        "archive workspace",
        "POST",
        page("archive/"),
        "admin",
        data=lambda ctx: {"archived": "1"},
        redirect=to("settings/"),
    ),
    Endpoint(
        "delete workspace",
        "POST",
        page("delete/"),
        "owner",
        data=lambda ctx: {"confirm": ctx.workspace.slug},
        redirect=lambda ctx: "/workspaces/",
    ),
    Endpoint(
        "change a role",
        "POST",
        lambda ctx: f"/workspaces/{ctx.workspace.slug}/members/{ctx.viewer_membership.pk}/role/",
        "admin",
        data=lambda ctx: {"role": "member"},
        redirect=to("members/"),
    ),
    Endpoint(
        "remove a member",
        "POST",
        lambda ctx: f"/workspaces/{ctx.workspace.slug}/members/{ctx.viewer_membership.pk}/remove/",
        "admin",
        redirect=to("members/"),
    ),
    Endpoint("leave", "POST", page("leave/"), "viewer", redirect=lambda ctx: "/workspaces/"),
    Endpoint(
        "send invitation",
        "POST",
        page("invitations/"),
        "admin",
        data=lambda ctx: {"email": "x@example.com", "role": "member"},
        redirect=to("members/"),
    ),
    Endpoint(
        "resend invitation",
        "POST",
        lambda ctx: f"/workspaces/{ctx.workspace.slug}/invitations/{ctx.invitation.pk}/resend/",
        "admin",
        redirect=to("members/"),
    ),
    Endpoint(
        "revoke invitation",
        "POST",
        lambda ctx: f"/workspaces/{ctx.workspace.slug}/invitations/{ctx.invitation.pk}/revoke/",
        "admin",
        redirect=to("members/"),
    ),
    # API
    Endpoint("workspace (API)", "GET", lambda ctx: f"/api/workspaces/{ctx.workspace.slug}/", "viewer", api=True),
    Endpoint(
        "update workspace (API)",
        "PATCH",
        lambda ctx: f"/api/workspaces/{ctx.workspace.slug}/",
        "admin",
        api=True,
        format="json",
        data=lambda ctx: {"description": "changed"},
    ),
    Endpoint(
        "delete workspace (API)", "DELETE", lambda ctx: f"/api/workspaces/{ctx.workspace.slug}/", "owner", api=True
    ),
    Endpoint("leave (API)", "POST", lambda ctx: f"/api/workspaces/{ctx.workspace.slug}/leave/", "viewer", api=True),
    Endpoint("members (API)", "GET", api("members/"), "viewer", api=True),
    Endpoint(
        "member (API)",
        "GET",
        lambda ctx: f"/api/workspaces/acme/members/{ctx.viewer_membership.pk}/",
        "viewer",
        api=True,
    ),
    Endpoint(
        "change role (API)",
        "PATCH",
        lambda ctx: f"/api/workspaces/acme/members/{ctx.viewer_membership.pk}/",
        "admin",
        api=True,
        format="json",
        data=lambda ctx: {"role": "member"},
    ),
    Endpoint(
        "remove member (API)",
        "DELETE",
        lambda ctx: f"/api/workspaces/acme/members/{ctx.viewer_membership.pk}/",
        "admin",
        api=True,
    ),
    Endpoint("invitations (API)", "GET", api("invitations/"), "admin", api=True),
    Endpoint(
        "invite (API)",
        "POST",
        api("invitations/"),
        "admin",
        api=True,
        format="json",
        data=lambda ctx: {"email": "y@example.com", "role": "viewer"},
    ),
    Endpoint(
        "resend invitation (API)",
        "POST",
        lambda ctx: f"/api/workspaces/acme/invitations/{ctx.invitation.pk}/resend/",
        "admin",
        api=True,
    ),
    Endpoint(
        "revoke invitation (API)",
        "DELETE",
        lambda ctx: f"/api/workspaces/acme/invitations/{ctx.invitation.pk}/",
        "admin",
        api=True,
    ),
]

EXEMPT = [
    Exempt("workspaces/", "the user's own workspaces (test_rules.py: someone without one sees none)"),
    Exempt("workspaces/new/", "creates a workspace; none exists yet to be outside of"),
    Exempt(
        "workspaces/invitations/<str:token>/",
        "an invitation by its secret token, for the invited email (test_rules.py)",
    ),
    Exempt("api/workspaces/$", "the user's own workspaces, and creating one (test_api.py)"),
    Exempt("api/invitations/accept/$", "accepting an invitation by its secret token (test_api.py)"),
]
