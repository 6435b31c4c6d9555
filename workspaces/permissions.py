"""The one place that decides who may see or change what.

Every page, API endpoint, search and cache entry of every app goes through
here:

- `workspace_ids(user)` — the workspaces a user belongs to (one query per
  request, then remembered on the user object);
- `role_in(user, workspace)` and `can(user, action, workspace, obj=None)`;
  with an object, the object-level rule too: below an admin, the actions
  in roles.ANYONES apply only to what the user created (the model's
  `creator_field`);
- `WorkspaceOwnedQuerySet.for_user(user)` — the manager method every
  workspace-owned model has, and every view starts from;
- `get_workspace_for(user, slug, action)` and `get_object_for(user, queryset,
  action, **lookup)` — fetch one object: outsiders get 404 (ids leak
  nothing), members without the role get 403 with a clear message;
  `get_own_object_for(...)` — the same for what is private to its owner
  (conversations): everyone else gets 404;
- `WorkspaceAccess` — the same rule as a DRF permission class.

Staff get no extra powers inside workspaces. The site-wide staff pages (the
whole audit log, user management, the System page) start with
`check_staff(user)`: anyone else gets 403 saying the page is for staff.
A request authenticated with a workspace API key carries that restriction
on the user (`restrict_to_workspace`): it then sees only that workspace.
"""

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404
from rest_framework import permissions as drf_permissions

from workspaces.roles import ACTIONS, ANYONES, ARCHIVED_ACTIONS, DESCRIPTIONS, OWN_THINGS, at_least

_CACHE_ATTR = "_workspace_roles"
_RESTRICT_ATTR = "_restricted_workspace_id"


def _roles(user):
    """{workspace id: role} for the user; loaded once per user object."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return {}
    roles = getattr(user, _CACHE_ATTR, None)
    if roles is None:
        from workspaces.models import Membership

        rows = Membership.objects.filter(user_id=user.pk).values_list("workspace_id", "role")
        restricted = getattr(user, _RESTRICT_ATTR, None)
        roles = {ws: role for ws, role in rows if restricted is None or ws == restricted}
        setattr(user, _CACHE_ATTR, roles)
    return roles


def forget(user):
    """Drop what was remembered about the user's memberships (after a change)."""
    if user is not None and hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def restrict_to_workspace(user, workspace_id):
    """Limit what this user object may see to one workspace (API key requests)."""
    setattr(user, _RESTRICT_ATTR, workspace_id)
    forget(user)


def workspace_ids(user):
    return list(_roles(user))


def role_in(user, workspace):
    """The user's role in the workspace, or None for outsiders."""
    workspace_id = getattr(workspace, "pk", workspace)
    return _roles(user).get(workspace_id)


def creator_id(obj):
    """The id of the user who created a workspace-owned object (its model's `creator_field`), or None."""
    field = getattr(type(obj), "creator_field", None)
    if field is None:
        raise ValueError(f"{type(obj).__name__} has no creator_field; object-level rules need one")
    return getattr(obj, f"{field}_id")


# Who has access, and whether the workspace exists, are changed by people (signed in, or with their own
# token), never with a workspace API key: a key that leaked, or one meant to be short-lived, must not
# leave behind invitations, roles or owners that outlive it (as it cannot mint keys, llmgateway/api.py).
NOT_WITH_A_KEY = frozenset({"manage_members", "manage_owners", "transfer", "delete_workspace"})


def acts_through_a_key(user):
    """Is this request's user acting through a workspace API key (restrict_to_workspace)?"""
    return getattr(user, _RESTRICT_ATTR, None) is not None


def check_person(user, doing):
    """PermissionDenied when the request acts through a workspace API key: what only people do outside one
    workspace's actions (creating a workspace, joining or leaving one, revoking keys)."""
    if acts_through_a_key(user):
        raise PermissionDenied(f"An API key cannot {doing}; sign in, or use your own API token.")


def why_not(user, action, workspace, obj=None):
    """None when the user may do the action (on obj, if given); otherwise a message a person can read."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    role = role_in(user, workspace)
    if role is None:
        return "You are not a member of this workspace."
    if action in NOT_WITH_A_KEY and acts_through_a_key(user):
        return f"An API key cannot {DESCRIPTIONS[action]}; sign in, or use your own API token."
    needed = ACTIONS[action]
    if getattr(workspace, "archived", False) and action not in ARCHIVED_ACTIONS:
        return f"This workspace is archived; nobody can {DESCRIPTIONS[action]} until an admin restores it."
    if not at_least(role, needed):
        return f"You need the {needed.label.lower()} role or higher to {DESCRIPTIONS[action]}; your role is {role}."
    below_anyones = action in ANYONES and not at_least(role, ANYONES[action])
    if obj is not None and below_anyones and creator_id(obj) != user.pk:
        return (
            f"As a {role} you can change only {OWN_THINGS[action]}; "
            f"an {ANYONES[action].label.lower()} or owner can change anyone's."
        )
    return None


def can(user, action, workspace, obj=None):
    """May the user do the action in the workspace (on obj)? (workspace: a Workspace or its id)"""
    return why_not(user, action, workspace, obj) is None


def check(user, action, workspace, obj=None):
    """Raise Http404 for outsiders and PermissionDenied (with the reason) for too low a role."""
    if role_in(user, workspace) is None:
        raise Http404("No such workspace")
    reason = why_not(user, action, workspace, obj)
    if reason:
        raise PermissionDenied(reason)


class WorkspaceOwnedQuerySet(models.QuerySet):
    """Base queryset for models that belong to a workspace.

    A model whose workspace is reached through a relation sets
    `workspace_path` on its queryset class, e.g. "document__workspace".
    """

    workspace_path = "workspace"

    def for_user(self, user):
        return self.filter(**{f"{self.workspace_path}_id__in": workspace_ids(user)})

    def in_workspace(self, workspace):
        return self.filter(**{f"{self.workspace_path}_id": getattr(workspace, "pk", workspace)})


def workspace_of(obj):
    """The workspace an object belongs to, following its queryset's workspace_path."""
    from workspaces.models import Workspace

    if isinstance(obj, Workspace):
        return obj
    path = getattr(type(obj).objects.get_queryset(), "workspace_path", "workspace")
    for part in path.split("__"):
        obj = getattr(obj, part)
    return obj


def check_staff(user, page="This page"):
    """Raise PermissionDenied unless the user is active staff (the site-wide staff pages)."""
    if not (getattr(user, "is_authenticated", False) and user.is_active and user.is_staff):
        raise PermissionDenied(f"{page} is for staff.")


def get_workspace_for(user, slug, action="view"):
    """The workspace with this slug, if the user may do the action in it."""
    from workspaces.models import Workspace

    workspace = Workspace.objects.for_user(user).filter(slug=slug).first()
    if workspace is None:
        raise Http404("No such workspace")
    check(user, action, workspace)
    return workspace


def get_object_for(user, queryset, action="view", **lookup):
    """One workspace-owned object: 404 unless it is in the user's workspaces, 403 without the role."""
    obj = queryset.for_user(user).filter(**lookup).first()
    if obj is None:
        raise Http404("Not found")
    check(user, action, workspace_of(obj), obj if action in ANYONES else None)
    return obj


def get_own_object_for(user, queryset, action="view", owner="user", **lookup):
    """One object the user owns (their conversation, their message): anyone else's is 404, even an admin's.

    `owner` is the lookup from the object to its owner, e.g. "conversation__user".
    """
    obj = queryset.for_user(user).filter(**{owner: user}, **lookup).first()
    if obj is None:
        raise Http404("Not found")
    check(user, action, workspace_of(obj))
    return obj


def scoped_cache_key(workspace, *parts):
    """A cache key that can only be read back within the same workspace."""
    workspace_id = getattr(workspace, "pk", workspace)
    return ":".join(["ws", str(workspace_id), *map(str, parts)])


class WorkspaceAccess(drf_permissions.BasePermission):
    """DRF permission: the view names the action for each HTTP method.

    A view sets `workspace_actions = {"GET": "view", "POST": "upload", ...}`
    (missing methods fall back to "view" for safe methods and
    "manage_settings" otherwise). Object checks use the object's workspace;
    querysets are already limited by `for_user`, so outsiders get 404.
    """

    def _action(self, request, view):
        actions = getattr(view, "workspace_actions", {})
        action_map = actions.get(getattr(view, "action", None)) or actions.get(request.method)
        if action_map:
            return action_map
        return "view" if request.method in drf_permissions.SAFE_METHODS else "manage_settings"

    def has_object_permission(self, request, view, obj):
        action = self._action(request, view)
        reason = why_not(request.user, action, workspace_of(obj), obj if action in ANYONES else None)
        if reason:
            if role_in(request.user, workspace_of(obj)) is None:
                raise Http404
            self.message = reason
            return False
        return True
