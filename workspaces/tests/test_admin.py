"""The admin obeys the same rules as the pages and the API."""

from django.contrib.auth.models import Permission

from workspaces.models import Membership

CHANGE_FIELDS = {"joined_at_0": "2026-01-01", "joined_at_1": "10:00:00"}


def staff_with_workspace_permissions(make_user, email):
    user = make_user(email, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="workspaces"))
    return user


def test_staff_admin_cannot_join_another_workspace_or_make_owners(client_for, make_user, workspace, other_workspace):
    staff = staff_with_workspace_permissions(make_user, "staff@example.com")
    mine = Membership.objects.create(workspace=workspace, user=staff, role="admin")
    client = client_for(staff)
    response = client.post(
        "/admin/workspaces/membership/add/",
        {"workspace": other_workspace.pk, "user": staff.pk, "role": "owner", **CHANGE_FIELDS},
    )
    assert response.status_code == 200  # the form again, with an error
    assert not Membership.objects.filter(workspace=other_workspace, user=staff).exists()
    response = client.post(
        f"/admin/workspaces/membership/{mine.pk}/change/", {"user": staff.pk, "role": "owner", **CHANGE_FIELDS}
    )
    assert b"Only an owner" in response.content
    mine.refresh_from_db()
    assert mine.role == "admin"
    # Other workspaces' memberships are not even listed.
    listing = client.get("/admin/workspaces/membership/")
    assert b"outsider@example.com" not in listing.content


def test_last_owner_stays_in_the_admin(client_for, make_user, workspace, owner):
    root = make_user("root@example.com", is_staff=True, is_superuser=True)
    client = client_for(root)
    membership = Membership.objects.get(workspace=workspace, user=owner)
    response = client.post(
        f"/admin/workspaces/membership/{membership.pk}/change/", {"user": owner.pk, "role": "viewer", **CHANGE_FIELDS}
    )
    assert b"at least one owner" in response.content
    client.post(f"/admin/workspaces/membership/{membership.pk}/delete/", {"post": "yes"})
    membership.refresh_from_db()
    assert membership.role == "owner"
