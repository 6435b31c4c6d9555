from django import template
from django.urls import NoReverseMatch, reverse

from workspaces import permissions

register = template.Library()

# (key, label, url names to try in order, least action to show the tab)
TABS = [
    ("overview", "Overview", ["workspaces:detail"], "view"),
    ("documents", "Documents", ["documents:list"], "view"),
    ("search", "Search", ["documents:search"], "search"),
    ("assistants", "Assistants", ["assistants:list"], "view"),
    ("members", "Members", ["workspaces:members"], "view"),
    ("gateway", "API & cache", ["llmgateway:workspace", "llmgateway:keys"], "manage_keys"),
    ("audit", "Audit", ["audit:workspace"], "view_audit"),
    ("settings", "Settings", ["workspaces:settings"], "manage_settings"),
]


@register.inclusion_tag("workspaces/_tabs.html", takes_context=True)
def workspace_tabs(context, workspace, active=""):
    """The tab bar shown on every page of a workspace, in whichever app."""
    user = context["request"].user
    tabs = []
    for key, label, names, action in TABS:
        if not permissions.can(user, action, workspace):
            continue
        for name in names:
            try:
                url = reverse(name, args=[workspace.slug])
            except NoReverseMatch:
                continue
            tabs.append({"key": key, "label": label, "url": url, "active": key == active})
            break
    return {"workspace": workspace, "tabs": tabs, "role": permissions.role_in(user, workspace)}


@register.filter
def role_badge(role):
    return f"badge badge-{role}" if role else "badge"
