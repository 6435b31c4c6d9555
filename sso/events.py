"""Audit events of single sign-on, in one place."""


def sso_sign_in(request, user, provider, *, created, memberships):
    pass
