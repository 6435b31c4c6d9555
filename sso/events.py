"""Single sign-on events: the place the audit log hooks in (the sign-in itself is logged by sso.signin)."""


def sso_sign_in(request, user, provider, *, created, memberships):
    """Called after every successful SSO sign-in, with the account creation and membership changes it made."""
    return None
