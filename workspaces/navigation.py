"""The tabs of a workspace's layout, in one place.

Every page of a workspace (in whichever app) extends
`workspaces/layout.html`, which shows the breadcrumb and the tab bar built
here. An app adds a tab with one line, in its AppConfig.ready():

    from workspaces.navigation import tab
    tab("usage", "Usage", "usage:workspace", action="view_usage", order=60)

`url_name` is reversed with the workspace's slug; the tab shows only to
users who may do `action` there (workspaces/roles.py); it is the current tab
on any page whose URL name is listed in `current` ("usage:*" for a whole
namespace; by default the namespace of `url_name`, for a sub-tab `url_name`
itself). A tab with `parent`
is a sub-tab, shown in a second row under its parent when that is current.
"""

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from workspaces import permissions


@dataclass(frozen=True)
class Tab:
    key: str
    label: str
    url_name: str
    action: str = "view"
    order: int = 50
    parent: str | None = None
    current: tuple = ()
    description: str = ""  # shown on the workspace's overview cards

    def is_current(self, view_name):
        default = (self.url_name,) if self.parent else (self.url_name.split(":")[0] + ":*",)
        for pattern in self.current or default:
            if pattern == view_name or (pattern.endswith(":*") and view_name.startswith(pattern[:-1])):
                return True
        return False


_TABS = {}


def tab(key, label, url_name, action="view", order=50, parent=None, current=(), description=""):
    """Register a tab (or, with `parent`, a sub-tab) of every workspace; registering a key again replaces it."""
    _TABS[key] = Tab(key, label, url_name, action, order, parent, tuple(current), description)


def registered():
    return sorted(_TABS.values(), key=lambda t: (t.order, t.key))


@dataclass(frozen=True)
class Link:
    key: str
    label: str
    url: str
    current: bool
    description: str = ""


def _links(user, workspace, view_name, tabs):
    links = []
    for item in tabs:
        if not permissions.can(user, item.action, workspace):
            continue
        try:
            url = reverse(item.url_name, args=[workspace.slug])
        except NoReverseMatch:
            continue
        links.append(Link(item.key, item.label, url, item.is_current(view_name), item.description))
    # One current tab at most: the first that claims the page.
    seen = False
    for index, link in enumerate(links):
        if link.current and seen:
            links[index] = Link(link.key, link.label, link.url, False, link.description)
        seen = seen or link.current
    return links


def tabs_for(user, workspace, view_name=""):
    """(tabs, sub-tabs of the current tab) the user may see in the workspace; no query beyond the user's roles."""
    every = registered()
    top = _links(user, workspace, view_name, [t for t in every if t.parent is None])
    current = next((link for link in top if link.current), None)
    subs = []
    if current is not None:
        subs = _links(user, workspace, view_name, [t for t in every if t.parent == current.key])
        if len(subs) < 2:
            subs = []
    return top, subs


_SEARCH = {}


def search_page(url_name, action="search"):
    """The page the header's search box sends a workspace's query to (a GET with `q`)."""
    _SEARCH.update(url_name=url_name, action=action)


def search_url(user, workspace):
    """Where the header's search box searches this workspace, or "" when the user may not search it."""
    if not _SEARCH or workspace is None or not getattr(workspace, "slug", None):
        return ""
    if not permissions.can(user, _SEARCH["action"], workspace):
        return ""
    try:
        return reverse(_SEARCH["url_name"], args=[workspace.slug])
    except NoReverseMatch:
        return ""


def sole_workspace(user):
    """The user's only (not archived) workspace, or None when they have none or several (one query at most)."""
    from workspaces.models import Workspace

    ids = permissions.workspace_ids(user)
    if len(ids) != 1:
        return None
    return Workspace.objects.filter(pk=ids[0], archived=False).first()


# The workspace's own tabs; documents, assistants and the gateway add theirs in their apps' ready().
tab("overview", "Overview", "workspaces:detail", order=0, current=("workspaces:detail",))
tab(
    "members",
    "Members",
    "workspaces:members",
    order=70,
    current=("workspaces:members",),
    description="Who is in this workspace and what they may do.",
)
tab("settings", "Settings", "workspaces:settings", action="manage_settings", order=90, current=("workspaces:settings",))
