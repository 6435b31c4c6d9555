"""Single sign-on events, in the audit log (the sign-in itself is also logged by sso.signin)."""

import audit


def sso_sign_in(request, user, provider, *, created, memberships):
    """Called after every successful SSO sign-in, with the account creation and membership changes it made."""
    details = {"provider": provider, "account_created": bool(created)}
    if memberships:
        details["memberships"] = [str(change) for change in memberships][:50]
    audit.record(user, "user.sso_login", obj=user, request=request, details=details)


def sso_refused(request, provider, reason):
    """Called for every refused SSO sign-in (the account, where known, is not signed in)."""
    audit.record("", "user.sso_login_failed", request=request, details={"provider": provider, "reason": reason[:200]})
