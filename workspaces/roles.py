"""Roles in a workspace, lowest to highest, and the least role each action needs."""

from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"
    OWNER = "owner", "Owner"


RANK = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3, Role.OWNER: 4}

# What each role may do. An action not listed here is a programming error.
ACTIONS = {
    # viewer: reads and chats
    "view": Role.VIEWER,
    "chat": Role.VIEWER,
    "search": Role.VIEWER,
    "leave": Role.VIEWER,
    # member: also uploads documents and creates assistants
    "upload": Role.MEMBER,
    "edit_documents": Role.MEMBER,
    "create_assistant": Role.MEMBER,
    "edit_assistants": Role.MEMBER,
    # admin: also manages members, keys and settings
    "manage_members": Role.ADMIN,
    "manage_keys": Role.ADMIN,
    "manage_settings": Role.ADMIN,
    "view_usage": Role.ADMIN,
    "view_audit": Role.ADMIN,
    # owner: also deletes or transfers the workspace
    "delete_workspace": Role.OWNER,
    "transfer": Role.OWNER,
    "manage_owners": Role.OWNER,
}

# Actions that, below the given role, apply only to what the user created: a member changes the
# documents they uploaded and the assistants they made; admins and owners change everyone's.
ANYONES = {
    "edit_documents": Role.ADMIN,
    "edit_assistants": Role.ADMIN,
}

# What a member may change of their own, for the refusal's message.
OWN_THINGS = {
    "edit_documents": "the documents you uploaded",
    "edit_assistants": "the assistants you created",
}

# Actions still allowed in an archived workspace (reading, leaving, un-archiving).
ARCHIVED_ACTIONS = {
    "view",
    "search",
    "leave",
    "view_audit",
    "manage_settings",
    "manage_members",
    "delete_workspace",
    "transfer",
}

DESCRIPTIONS = {
    "view": "see this workspace",
    "chat": "chat with assistants",
    "search": "search documents",
    "leave": "leave this workspace",
    "upload": "upload documents",
    "edit_documents": "change documents",
    "create_assistant": "create assistants",
    "edit_assistants": "change assistants",
    "manage_members": "manage members and invitations",
    "manage_keys": "manage API keys",
    "manage_settings": "change workspace settings",
    "view_usage": "see usage and cache statistics",
    "view_audit": "see this workspace's audit log",
    "delete_workspace": "delete this workspace",
    "transfer": "transfer this workspace",
    "manage_owners": "change owners",
}


def rank(role):
    return RANK.get(role, 0)


def at_least(role, needed):
    return rank(role) >= rank(needed)
