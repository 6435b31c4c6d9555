"""The audit log: who did what, where, to what, from which address, and when.

Record an event from any app (pages, API, services, signals, commands):

    import audit

    audit.record(request.user, "user.totp_enabled", obj=request.user, request=request)
    audit.record(user, "user.sso_login", details={"provider": "okta"}, request=request)
    audit.record(actor, "membership.role_change", workspace=ws, obj=membership,
                 changes={"role": ["viewer", "admin"]})

- `actor`: the user who acted (None: the request's signed-in user, or the
  system when there is no request); a string names an account that is not
  signed in, e.g. the email of a failed sign-in.
- `action`: "<object type>.<verb>", lowercase, e.g. "document.delete".
- `workspace`: a Workspace or its id, for events inside one (their admins see them).
- `obj`: a model instance, or a (type, id, repr) tuple.
- `changes`: {field: [before, after]} for the fields that changed. Never put
  secrets (passwords, keys, tokens, TOTP seeds) or document text here; write
  `audit.HIDDEN` for a secret that changed.
- `request`: where the address comes from (corporate.auth.client_address,
  which honours PROXY_COUNT); defaults to the request being served.
- `details`: a small JSON-safe dict of context (a provider's name, a reason).

Model changes of the registered models (audit.tracking.track) are recorded
on their own; `record` is for what the models do not show (sign-ins, mails,
second factors). The event is written in the caller's transaction: if the
change rolls back, so does its record.
"""

HIDDEN = "[hidden]"


def record(actor, action, workspace=None, obj=None, changes=None, request=None, details=None):
    """Write one audit event and return it (see the module's docstring)."""
    from audit.log import record as _record

    return _record(actor, action, workspace=workspace, obj=obj, changes=changes, request=request, details=details)


def acting(user):
    """Context manager: events recorded inside have `user` as their actor (commands, scripts)."""
    from audit.context import acting as _acting

    return _acting(user)
