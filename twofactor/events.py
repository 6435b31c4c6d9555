"""Audit events of two-factor authentication, in one place."""


def enrolled(request, user):
    pass


def recovery_codes_renewed(request, user):
    pass


def disabled(request, user):
    pass
