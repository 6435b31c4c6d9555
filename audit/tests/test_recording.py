"""What goes into the audit log, from which path, and that it never changes."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

import audit
from audit.models import AppendOnly, AuditEvent
from workspaces.models import Invitation, Membership


def events(action=None):
    qs = AuditEvent.objects.order_by("id")
    return list(qs.filter(action=action) if action else qs)


def last(action):
    found = events(action)
    assert found, f"no {action} event; have {[e.action for e in events()]}"
    return found[-1]


# Recording


def test_record_fills_actor_workspace_object_and_address(rf, workspace, owner, settings):
    settings.PROXY_COUNT = 1
    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9", REMOTE_ADDR="10.0.0.2")
    request.user = owner
    event = audit.record(None, "thing.happen", obj=workspace, request=request, changes={"n": [1, 2]})
    assert (event.actor_id, event.actor_email) == (owner.pk, "owner@example.com")
    assert (event.workspace_id, event.workspace_slug) == (workspace.pk, "acme")
    assert (event.object_type, event.object_id, event.object_repr) == ("workspace", str(workspace.pk), "Acme Research")
    # The entry nginx wrote, never the one the client made up.
    assert event.ip_address == "203.0.113.9"
    assert event.changes == {"n": [1, 2]}


def test_record_without_request_is_the_system_and_keeps_values_short(db):
    event = audit.record(None, "system.tick", obj=("report", 7, "Weekly"), details={"text": "x" * 2000})
    assert (event.actor_id, event.actor_email, event.actor_label, event.ip_address) == (None, "", "system", None)
    assert (event.object_type, event.object_id, event.object_repr) == ("report", "7", "Weekly")
    assert len(event.details["text"]) == 500


def test_acting_names_the_actor_of_model_changes(owner, workspace):
    with audit.acting(owner):
        workspace.name = "Renamed"
        workspace.save()
    event = last("workspace.update")
    assert event.actor_email == "owner@example.com"
    assert event.changes == {"name": ["Acme Research", "Renamed"]}


# Append-only


def test_events_cannot_be_changed_or_deleted_through_the_orm(db):
    event = audit.record(None, "x.y")
    event.action = "changed"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "x.y"


def test_the_database_refuses_an_update_too(db):
    event = audit.record(None, "x.y")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET action = 'forged' WHERE id = %s", [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "x.y"


def test_admin_is_read_only(client, django_user_model):
    boss = django_user_model.objects.create_superuser(email="boss@example.com", password="pw-long-enough-1")
    client.force_login(boss)
    event = audit.record(boss, "x.y")
    assert client.get("/admin/audit/auditevent/").status_code == 200
    page = client.get(f"/admin/audit/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


# Sign-in


def test_sign_in_and_failure_are_recorded_with_the_address(client, member):
    client.post("/accounts/login/", {"username": "member@example.com", "password": "wrong"}, REMOTE_ADDR="198.51.100.4")
    failure = last("user.login_failed")
    assert (failure.actor_email, failure.ip_address, failure.actor_id) == ("member@example.com", "198.51.100.4", None)
    assert "wrong" not in str(failure.details) + str(failure.changes)
    client.post(
        "/accounts/login/",
        {"username": "Member@Example.com", "password": "correct horse battery"},
        REMOTE_ADDR="198.51.100.4",
    )
    login = last("user.login")
    assert (login.actor_id, login.object_type, login.ip_address) == (member.pk, "user", "198.51.100.4")
    client.post("/accounts/logout/")
    assert last("user.logout").actor_id == member.pk


@override_settings(LOGIN_FAILURE_LIMIT=2)
def test_lockout_is_recorded(client, member):
    for _ in range(3):
        client.post("/accounts/login/", {"username": "member@example.com", "password": "wrong"})
    assert last("user.locked_out").actor_email == "member@example.com"


# Accounts


def test_user_creation_deactivation_and_password_change(make_user):
    user = make_user("new@example.com", full_name="New Person")
    created = last("user.create")
    assert created.changes["email"] == [None, "new@example.com"]
    assert created.changes["password"] == [None, audit.HIDDEN]
    user.is_active = False
    user.save()
    assert last("user.deactivate").changes == {"is_active": [True, False]}
    user.is_active = True
    user.save()
    assert last("user.reactivate").object_id == str(user.pk)
    user.set_password("another long secret")
    user.save()
    change = last("user.password_change")
    assert change.changes == {"password": [audit.HIDDEN, audit.HIDDEN]}
    for event in events():
        assert "pbkdf2" not in str(event.changes) and "md5$" not in str(event.changes)


def test_last_login_alone_records_nothing(member):
    from django.contrib.auth.models import update_last_login

    before = AuditEvent.objects.count()
    update_last_login(None, member)
    assert AuditEvent.objects.count() == before


# Workspaces, members, invitations (through the pages: the actor is the signed-in user)


def test_workspace_and_member_changes_through_the_pages(client_for, owner, workspace, viewer, mailoutbox):
    client = client_for(owner)
    client.post("/workspaces/new/", {"name": "Ops", "slug": "ops", "description": ""}, REMOTE_ADDR="192.0.2.8")
    created = last("workspace.create")
    assert (created.actor_email, created.workspace_slug, created.ip_address) == (
        "owner@example.com",
        "ops",
        "192.0.2.8",
    )

    membership = Membership.objects.get(workspace=workspace, user=viewer)
    client.post(f"/workspaces/acme/members/{membership.pk}/role/", {"role": "member"})
    change = last("membership.update")
    assert change.changes == {"role": ["viewer", "member"]}
    assert (change.workspace_id, change.object_repr, change.actor_id) == (workspace.pk, "viewer@example.com", owner.pk)

    client.post("/workspaces/acme/invitations/", {"email": "hire@example.com", "role": "viewer"})
    invitation = Invitation.objects.get(email="hire@example.com")
    assert last("invitation.create").changes["email"] == [None, "hire@example.com"]
    client.post(f"/workspaces/acme/invitations/{invitation.pk}/resend/")
    assert last("invitation.resend").workspace_id == workspace.pk
    client.post(f"/workspaces/acme/invitations/{invitation.pk}/revoke/")
    assert last("invitation.revoke").actor_id == owner.pk
    for event in events():
        assert invitation.token not in str(event.changes) + str(event.details)

    client.post(f"/workspaces/acme/members/{membership.pk}/remove/")
    assert last("membership.delete").object_repr == "viewer@example.com"
    client.post("/workspaces/acme/settings/", {"name": "Acme", "description": ""})
    assert last("workspace.update").changes == {"name": ["Acme Research", "Acme"]}
    client.post("/gateway/acme/cache/", {"cache_policy": "none"})
    assert last("workspace.update").changes == {"cache_policy": ["all", "none"]}
    client.post("/gateway/acme/cache/clear/")
    assert (last("workspace.cache_clear").workspace_slug, last("workspace.cache_clear").actor_id) == ("acme", owner.pk)
    client.post("/workspaces/acme/archive/", {"archived": "1"})
    assert last("workspace.archive").workspace_id == workspace.pk


def test_accepting_an_invitation_is_recorded(client_for, workspace, admin_user, make_user):
    from workspaces import services

    invitation = services.invite(admin_user, workspace, "joiner@example.com", "viewer")
    joiner = make_user("joiner@example.com")
    client_for(joiner).post(invitation.get_accept_url())
    accepted = last("invitation.accept")
    assert (accepted.actor_id, accepted.workspace_id) == (joiner.pk, workspace.pk)
    assert last("membership.create").object_repr == "joiner@example.com"


def test_deleting_a_workspace_records_it_once(client_for, owner, workspace):
    client = client_for(owner)
    before = AuditEvent.objects.count()
    client.post("/workspaces/acme/delete/", {"confirm": "acme"})
    new = list(AuditEvent.objects.order_by("id")[before:])
    # The members went with it, and are not listed one by one.
    assert [e.action for e in new] == ["workspace.delete"]
    assert new[0].workspace_slug == "acme"


# Documents, assistants, keys, models, admin


def test_document_upload_and_delete_never_record_text(client_for, member, workspace):
    client = client_for(member)
    secret_text = b"The merger with Globex closes in March."
    client.post("/documents/acme/upload/", {"files": SimpleUploadedFile("plan.txt", secret_text, "text/plain")})
    upload = last("document.upload")
    assert (upload.actor_id, upload.workspace_id, upload.object_repr) == (member.pk, workspace.pk, "plan")
    client.post(f"/documents/acme/{upload.object_id}/delete/")
    assert last("document.delete").object_id == upload.object_id
    assert "merger" not in str([(e.changes, e.details, e.object_repr) for e in events()])


def test_assistant_create_edit_delete(member, workspace):
    from assistants.models import Assistant

    with audit.acting(member):
        assistant = Assistant.objects.create(workspace=workspace, name="Helper", instructions="Be brief.")
        assistant.temperature = 0.5
        assistant.save()
        assistant.delete()
    assert last("assistant.create").changes["name"] == [None, "Helper"]
    assert last("assistant.update").changes == {"temperature": [0.0, 0.5]}
    assert last("assistant.delete").actor_id == member.pk


def test_api_keys_never_record_key_material(client_for, admin_user, workspace):
    client = client_for(admin_user)
    page = client.post("/gateway/acme/keys/", {"name": "CI", "scopes": ["completions"]})
    created = last("api_key.create")
    assert (created.object_repr, created.actor_id, created.workspace_id) == ("CI", admin_user.pk, workspace.pk)
    from llmgateway.models import ApiKey

    key = ApiKey.objects.get(pk=created.object_id)
    client.post(f"/gateway/acme/keys/{key.pk}/revoke/")
    assert last("api_key.revoke").object_id == str(key.pk)
    logged = str([(e.changes, e.details, e.object_repr) for e in events()])
    assert key.key_hash not in logged and key.prefix not in logged
    assert key.prefix in page.content.decode()  # the page did show the new key


def test_model_configuration_hides_the_stored_key(db, django_user_model, client):
    from llmgateway.models import ModelConfig

    staff = django_user_model.objects.create_superuser(email="ops@example.com", password="pw-long-enough-1")
    model = ModelConfig.objects.create(name="gpt-test", provider="offline")
    model.set_api_key("sk-very-secret")
    model.timeout_seconds = 9
    model.save()
    update = last("model.update")
    assert update.changes["timeout_seconds"][1] == 9
    assert update.changes["api_key_encrypted"] == [audit.HIDDEN, audit.HIDDEN]
    assert "sk-very-secret" not in str([e.changes for e in events()])
    # An admin action is recorded as such, with the admin's change message.
    client.force_login(staff)
    client.post(f"/admin/llmgateway/modelconfig/{model.pk}/delete/", {"post": "yes"})
    admin_event = last("admin.delete")
    assert (admin_event.actor_id, admin_event.object_type, admin_event.object_repr) == (
        staff.pk,
        "modelconfig",
        "gpt-test",
    )
    assert last("model.delete").actor_id == staff.pk


# Prune


def test_prune_audit_keeps_recent_events(db, settings, capsys):
    from datetime import timedelta

    from django.utils import timezone

    settings.AUDIT_RETENTION_DAYS = 30
    old = AuditEvent.objects.create(action="old.one", created_at=timezone.now() - timedelta(days=31))
    recent = AuditEvent.objects.create(action="recent.one", created_at=timezone.now() - timedelta(days=29))
    call_command("prune_audit", "--dry-run")
    assert "Would delete 1 audit event older than" in capsys.readouterr().out
    assert AuditEvent.objects.filter(pk=old.pk).exists()
    call_command("prune_audit")
    assert "Deleted 1 audit event older than" in capsys.readouterr().out
    assert not AuditEvent.objects.filter(pk=old.pk).exists()
    assert AuditEvent.objects.filter(pk=recent.pk).exists()
    call_command("prune_audit", "--days", "1")
    assert "Deleted 1 audit event" in capsys.readouterr().out


def test_audit_log_command_prints_csv_and_json_with_filters(workspace, other_workspace, owner, outsider, capsys):
    import csv
    import io
    import json

    from django.core.management.base import CommandError

    audit.record(owner, "workspace.update", obj=workspace, changes={"name": ["A", "B"]})
    audit.record(outsider, "workspace.update", obj=other_workspace)
    call_command("audit_log", "acme", "--actor", "OWNER@example.com", "--action", "workspace.update")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["actor"], r["workspace"], r["changes"]) for r in rows] == [
        ("owner@example.com", "acme", '{"name": ["A", "B"]}')
    ]
    call_command("audit_log", "--format", "json", "--since", "2000-01-01", "--action", "workspace.update")
    records = json.loads(capsys.readouterr().out)
    assert {r["workspace"] for r in records} == {"acme", "globex"}
    assert records[0]["changes"] == {} and records[1]["changes"] == {"name": ["A", "B"]}
    with pytest.raises(CommandError, match="--since: Enter a valid date"):
        call_command("audit_log", "--since", "last tuesday")


def test_api_requests_name_their_user_and_address(api_client_for, admin_user, workspace):
    api = api_client_for(admin_user)  # a token: DRF authenticates inside the view
    response = api.post("/api/gateway/acme/keys/", {"name": "Deploy"}, format="json", REMOTE_ADDR="203.0.113.77")
    assert response.status_code == 201, response.content
    created = last("api_key.create")
    assert (created.actor_id, created.ip_address, created.object_repr) == (admin_user.pk, "203.0.113.77", "Deploy")
    assert response.json()["key"][:12] not in str(created.changes)
    api.delete(f"/api/gateway/acme/keys/{created.object_id}/")
    assert last("api_key.revoke").actor_id == admin_user.pk or last("api_key.delete").actor_id == admin_user.pk


def test_limit_changes_are_recorded_with_before_and_after(owner, workspace):
    from llmgateway.models import Limit, LimitKind

    with audit.acting(owner):
        limit = Limit.objects.create(kind=LimitKind.WORKSPACE, workspace=workspace, rpm=60)
        limit.rpm = 30
        limit.save()
        limit.delete()
    created, changed, removed = (last(f"limit.{verb}") for verb in ("create", "update", "delete"))
    assert created.workspace_id == workspace.pk and created.actor_id == owner.pk
    assert changed.changes["rpm"] == [60, 30]
    assert removed.workspace_id == workspace.pk
