import pytest
from django.core import mail
from rest_framework.test import APIClient

from workspaces.models import Invitation, Membership, Workspace


def test_token_from_credentials_and_list(make_user, workspace, owner):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "owner@example.com", "password": "correct horse battery"})
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token " + response.json()["token"])
    body = client.get("/api/workspaces/").json()
    assert body["count"] == 1
    assert body["results"][0]["slug"] == "acme"
    assert body["results"][0]["my_role"] == "owner"
    assert body["results"][0]["member_count"] == 4


@pytest.mark.parametrize(
    "header", ['Token "quoted"', "Token ' OR 1=1 --", "Token " + "x" * 10_000, "Bearer", "Token a b c"]
)
def test_malformed_token_is_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/workspaces/").status_code == 401


def test_anonymous_gets_401_or_403(db):
    assert APIClient().get("/api/workspaces/").status_code in (401, 403)


def test_create_workspace_with_field_errors(api_client_for, member, workspace):
    client = api_client_for(member)
    response = client.post("/api/workspaces/", {"name": "", "slug": "acme"}, format="json")
    assert response.status_code == 400
    errors = response.json()
    assert "name" in errors and "slug" in errors
    response = client.post("/api/workspaces/", {"name": "Ops", "slug": "ops", "archived": "true"}, format="json")
    assert response.status_code == 400
    assert "archived" in response.json()
    response = client.post(
        "/api/workspaces/", {"name": "Ops", "slug": "ops", "owner": 99, "is_staff": True}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["my_role"] == "owner"
    assert Membership.objects.get(workspace__slug="ops", user=member).role == "owner"
    member.refresh_from_db()
    assert not member.is_staff


def test_member_cannot_change_own_role_via_api(api_client_for, workspace, member):
    mine = Membership.objects.get(workspace=workspace, user=member)
    response = api_client_for(member).patch(
        f"/api/workspaces/acme/members/{mine.pk}/", {"role": "owner"}, format="json"
    )
    assert response.status_code == 403
    mine.refresh_from_db()
    assert mine.role == "member"


def test_unknown_role_via_api_is_a_field_error(api_client_for, workspace, admin_user, viewer):
    m = Membership.objects.get(workspace=workspace, user=viewer)
    response = api_client_for(admin_user).patch(f"/api/workspaces/acme/members/{m.pk}/", {"role": "god"}, format="json")
    assert response.status_code == 400
    assert "role" in response.json()


def test_last_owner_via_api(api_client_for, workspace, owner):
    mine = Membership.objects.get(workspace=workspace, user=owner)
    response = api_client_for(owner).patch(f"/api/workspaces/acme/members/{mine.pk}/", {"role": "admin"}, format="json")
    assert response.status_code == 400
    assert "at least one owner" in response.json()["detail"]
    response = api_client_for(owner).post("/api/workspaces/acme/leave/")
    assert response.status_code == 400


def test_slug_cannot_change(api_client_for, workspace, owner):
    response = api_client_for(owner).patch("/api/workspaces/acme/", {"slug": "new"}, format="json")
    assert response.status_code == 400
    assert Workspace.objects.filter(slug="acme").exists()


def test_invitation_flow_via_api(api_client_for, workspace, admin_user, make_user):
    client = api_client_for(admin_user)
    response = client.post(
        "/api/workspaces/acme/invitations/", {"email": "api.hire@example.com", "role": "viewer"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "pending"
    assert len(mail.outbox) == 1
    token = Invitation.objects.get(email="api.hire@example.com").token
    hire = make_user("api.hire@example.com")
    wrong = api_client_for(make_user("wrong@example.com")).post(
        "/api/invitations/accept/", {"token": token}, format="json"
    )
    assert wrong.status_code == 403
    response = api_client_for(hire).post("/api/invitations/accept/", {"token": token}, format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "viewer"
    again = api_client_for(hire).post("/api/invitations/accept/", {"token": token}, format="json")
    assert again.status_code == 400
    assert "already been used" in again.json()["detail"]


def test_invite_owner_as_admin_is_403(api_client_for, workspace, admin_user):
    response = api_client_for(admin_user).post(
        "/api/workspaces/acme/invitations/", {"email": "b@example.com", "role": "owner"}, format="json"
    )
    assert response.status_code == 403


def test_list_query_count_is_constant(api_client_for, member, django_assert_max_num_queries):
    from workspaces import services

    client = api_client_for(member)
    for i in range(50):
        services.create_workspace(member, name=f"T{i}", slug=f"t-{i}")
    # token+user, workspace ids, count, page of workspaces with counts
    with django_assert_max_num_queries(4):
        response = client.get("/api/workspaces/")
    assert response.json()["count"] == 50


def test_openapi_schema_validates(client, db):
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    assert "/api/workspaces/{slug}/" in schema["paths"]
    response = client.get("/api/schema/")
    assert response.status_code == 200


def test_swagger_ui_is_served_offline(client_for, member):
    response = client_for(member).get("/api/docs/")
    assert response.status_code == 200
    assert b"/static/drf_spectacular_sidecar/" in response.content
    assert b"cdn" not in response.content.lower()


def test_token_for_a_locked_out_account_is_429(make_user):
    make_user("locked@example.com")
    for _ in range(5):
        APIClient(REMOTE_ADDR="10.3.0.1").post("/api/auth/token/", {"username": "locked@example.com", "password": "no"})
    response = APIClient(REMOTE_ADDR="10.3.0.1").post(
        "/api/auth/token/", {"username": "locked@example.com", "password": "correct horse battery"}
    )
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.json()["detail"]
