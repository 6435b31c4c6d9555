"""people's URLs for the isolation suite (workspaces/tests/test_isolation.py).

User management is for staff, site-wide, outside any workspace: everyone
else gets 403 (workspaces.permissions.check_staff), tested in
people/tests/test_people.py.
"""

from workspaces.tests.isolation import Exempt

ENDPOINTS = []

EXEMPT = [
    Exempt("people/", "user management: staff only, no workspace (people/tests/test_people.py)", prefix=True),
]
