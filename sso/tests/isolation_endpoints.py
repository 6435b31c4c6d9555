"""sso's URLs for the isolation suite: sign-in through an identity provider, outside any workspace.

The group mappings these apply are tested in sso/tests/test_oidc.py.
"""

from workspaces.tests.isolation import Exempt

ENDPOINTS = []
EXEMPT = [
    Exempt("accounts/sso/<slug:slug>/login/", "starts a sign-in at an identity provider: no one is signed in yet"),
    Exempt(
        "accounts/sso/<slug:slug>/callback/", "the identity provider's answer: signs the person in, no workspace data"
    ),
    Exempt("accounts/logout/", "ends the person's own session (and the identity provider's)"),
]
