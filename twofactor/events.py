"""Changes to a person's second factor: one log line each, and the place the audit log hooks in."""

import logging

from corporate.auth import client_address

log = logging.getLogger("twofactor")


def enrolled(request, user):
    log.info("two-factor: %s enrolled an authenticator app (from %s)", user.email, client_address(request))


def recovery_codes_renewed(request, user):
    log.info("two-factor: %s made new recovery codes (from %s)", user.email, client_address(request))


def disabled(request, user):
    log.info("two-factor: %s turned two-factor sign-in off (from %s)", user.email, client_address(request))
