import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from workspaces.models import Membership, Workspace


def test_create_workspace_and_add_member(make_user, capsys):
    make_user("boss@example.com")
    make_user("staff@example.com")
    call_command("create_workspace", "finance", "--owner", "boss@example.com", "--name", "Finance")
    call_command("add_member", "finance", "staff@example.com", "--role", "viewer")
    assert Membership.objects.get(workspace__slug="finance", user__email="staff@example.com").role == "viewer"
    call_command("add_member", "finance", "staff@example.com", "--role", "admin")
    assert Membership.objects.get(workspace__slug="finance", user__email="staff@example.com").role == "admin"
    call_command("list_workspaces")
    out = capsys.readouterr().out
    assert "finance\tFinance\t2" in out
    assert out.strip().endswith("1 workspace")


def test_command_errors_are_clear(make_user):
    make_user("boss@example.com")
    with pytest.raises(CommandError, match="No user"):
        call_command("create_workspace", "x", "--owner", "nobody@example.com")
    with pytest.raises(CommandError, match="Bad slug"):
        call_command("create_workspace", "Bad Slug", "--owner", "boss@example.com")
    call_command("create_workspace", "dup", "--owner", "boss@example.com")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_workspace", "dup", "--owner", "boss@example.com")
    with pytest.raises(CommandError, match="No workspace"):
        call_command("add_member", "nope", "boss@example.com", "--role", "viewer")
    with pytest.raises(CommandError, match="last owner"):
        call_command("add_member", "dup", "boss@example.com", "--role", "viewer")
    assert Workspace.objects.count() == 1
