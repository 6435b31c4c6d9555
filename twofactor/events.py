"""Changes to a person's second factor: one log line and one audit event each."""

import logging

import audit
from corporate.auth import client_address

log = logging.getLogger("twofactor")


def enrolled(request, user):
    log.info("two-factor: %s enrolled an authenticator app (from %s)", user.email, client_address(request))
    audit.record(user, "user.mfa_enable", obj=user, request=request)


def recovery_codes_renewed(request, user):
    log.info("two-factor: %s made new recovery codes (from %s)", user.email, client_address(request))
    audit.record(user, "user.mfa_recovery_codes", obj=user, request=request)


def disabled(request, user):
    log.info("two-factor: %s turned two-factor sign-in off (from %s)", user.email, client_address(request))
    audit.record(user, "user.mfa_disable", obj=user, request=request)
