"""Writing audit events: `audit.record()` lands here."""

import datetime
import decimal
import uuid

from django.apps import apps
from django.db import models

from audit.context import current_actor, current_request
from audit.models import AuditEvent

MAX_VALUE_CHARS = 500


def jsonable(value):
    """A value as the audit log stores it: JSON types, long text cut short."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    return jsonable(str(value))


def _actor_fields(actor, request):
    if actor is None:
        actor = current_actor()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            actor = user
    if actor is None:
        return None, ""
    if isinstance(actor, str):
        return None, actor.strip().lower()[:254]
    return actor.pk, (actor.email or "")[:254]


def _workspace_fields(workspace, obj):
    if workspace is None and obj is not None and not isinstance(obj, tuple):
        # An object that belongs to a workspace brings it along.
        if obj._meta.label_lower == "workspaces.workspace":
            workspace = obj
        elif hasattr(obj, "workspace_id"):
            cached = obj._state.fields_cache.get("workspace")
            workspace = cached if cached is not None else obj.workspace_id
    if workspace is None:
        return None, ""
    if isinstance(workspace, int):
        # The slug as it is now: one query, on a write that is rare.
        Workspace = apps.get_model("workspaces", "Workspace")
        slug = Workspace.objects.filter(pk=workspace).values_list("slug", flat=True).first()
        return workspace, slug or ""
    return workspace.pk, (getattr(workspace, "slug", "") or "")[:50]


def _object_fields(obj):
    if obj is None:
        return "", "", ""
    if isinstance(obj, tuple):
        kind, pk, text = obj
        return str(kind)[:64], str(pk if pk is not None else "")[:64], str(text)[:200]
    return obj._meta.model_name[:64], str(obj.pk if obj.pk is not None else "")[:64], str(obj)[:200]


def client_address(request):
    from corporate.auth import client_address as address

    value = address(request) if request is not None else ""
    return value or None


def record(actor, action, *, workspace=None, obj=None, changes=None, request=None, details=None):
    if request is None:
        request = current_request()
    actor_id, actor_email = _actor_fields(actor, request)
    workspace_id, workspace_slug = _workspace_fields(workspace, obj)
    object_type, object_id, object_repr = _object_fields(obj)
    return AuditEvent.objects.create(
        actor_id=actor_id,
        actor_email=actor_email,
        action=action[:64],
        workspace_id=workspace_id,
        workspace_slug=workspace_slug,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        changes={str(k): [jsonable(v) for v in pair] for k, pair in (changes or {}).items()},
        details=jsonable(details or {}),
        ip_address=client_address(request),
    )
