"""twofactor's URLs for the isolation suite: the signed-in person's own second factor, outside any workspace.

Each page reads or changes only request.user's devices (twofactor/tests/test_twofactor.py).
"""

from workspaces.tests.isolation import Exempt

ENDPOINTS = []
EXEMPT = [
    Exempt("accounts/2fa/", "the person's own two-factor status and settings", prefix=True),
    Exempt("admin/login/", "sends the admin's sign-in to the site's, which has the second step"),
]
