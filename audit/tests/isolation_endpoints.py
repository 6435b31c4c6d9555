"""audit's URLs for the isolation suite (workspaces/tests/test_isolation.py).

A workspace's audit log and its export are for the workspace's admins; the
site-wide log is for staff only (workspaces.permissions.check_staff; everyone
else gets 403), tested in audit/tests/test_pages.py.
"""

import audit
from workspaces.tests.isolation import Endpoint, Exempt


def setup(ctx):
    ctx.event = audit.record(ctx.users["owner"], "workspace.update", obj=ctx.workspace, changes={"name": ["a", "b"]})


ENDPOINTS = [
    Endpoint("audit log page", "GET", lambda ctx: f"/workspaces/{ctx.workspace.slug}/audit/", "admin"),
    Endpoint("audit log export", "GET", lambda ctx: f"/workspaces/{ctx.workspace.slug}/audit/export/", "admin"),
]

EXEMPT = [
    Exempt("audit/", "the whole site's audit log: staff only, no workspace (audit/tests/test_pages.py)"),
    Exempt("audit/export/", "its CSV export: staff only (audit/tests/test_pages.py)"),
]
