"""The words the audit pages use for actions and object types.

An action missing here is still recorded and shown, by its code; add a line
when adding a new kind of event, so the page and the action filter name it.
"""

ACTIONS = {
    # accounts and sign-in
    "user.login": "Signed in",
    "user.logout": "Signed out",
    "user.login_failed": "Sign-in failed",
    "user.locked_out": "Sign-in paused after failures",
    "user.create": "User created",
    "user.update": "User changed",
    "user.deactivate": "User deactivated",
    "user.reactivate": "User reactivated",
    "user.password_change": "Password changed",
    "user.password_reset_sent": "Password reset mail sent",
    "user.welcome_sent": "Set-password mail sent",
    "user.delete": "User deleted",
    # single sign-on and second factors (recorded by the sign-in code with audit.record)
    "user.sso_login": "Signed in with single sign-on",
    "user.sso_login_failed": "Single sign-on failed",
    "user.mfa_enable": "Two-factor authentication turned on",
    "user.mfa_disable": "Two-factor authentication turned off",
    "user.mfa_recovery_codes": "Recovery codes created",
    "user.mfa_failed": "Wrong second-factor code",
    # workspaces
    "workspace.create": "Workspace created",
    "workspace.update": "Workspace settings changed",
    "workspace.archive": "Workspace archived",
    "workspace.restore": "Workspace restored",
    "workspace.delete": "Workspace deleted",
    "workspace.cache_clear": "Answer cache cleared",
    "membership.create": "Member added",
    "membership.update": "Member's role changed",
    "membership.delete": "Member removed",
    "invitation.create": "Invitation sent",
    "invitation.resend": "Invitation sent again",
    "invitation.revoke": "Invitation revoked",
    "invitation.accept": "Invitation accepted",
    "invitation.update": "Invitation changed",
    "invitation.delete": "Invitation deleted",
    # documents and assistants
    "document.upload": "Document uploaded",
    "document.update": "Document changed",
    "document.delete": "Document deleted",
    "assistant.create": "Assistant created",
    "assistant.update": "Assistant changed",
    "assistant.documents_change": "Assistant's documents changed",
    "assistant.delete": "Assistant deleted",
    # model gateway
    "api_key.create": "API key created",
    "api_key.update": "API key changed",
    "api_key.revoke": "API key revoked",
    "api_key.delete": "API key deleted",
    "model.create": "Model added",
    "model.update": "Model configuration changed",
    "model.delete": "Model removed",
    "limit.create": "Limit set",
    "limit.update": "Limit changed",
    "limit.delete": "Limit removed",
    # the Django admin
    "admin.add": "Added in the admin",
    "admin.change": "Changed in the admin",
    "admin.delete": "Deleted in the admin",
}

OBJECT_TYPES = {
    "user": "User",
    "workspace": "Workspace",
    "membership": "Membership",
    "invitation": "Invitation",
    "document": "Document",
    "assistant": "Assistant",
    "apikey": "API key",
    "modelconfig": "Model",
    "limit": "Limit",
}


def action_label(code):
    return ACTIONS.get(code, code)


def object_type_label(code):
    return OBJECT_TYPES.get(code, code)
