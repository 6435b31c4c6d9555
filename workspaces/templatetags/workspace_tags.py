from django import template

from workspaces import navigation, permissions

register = template.Library()


@register.simple_tag(takes_context=True)
def workspace_nav(context, workspace):
    """The workspace layout's tab bar: {"tabs", "subtabs", "current", "role"} for the signed-in user."""
    request = context["request"]
    match = getattr(request, "resolver_match", None)
    tabs, subtabs = navigation.tabs_for(request.user, workspace, match.view_name if match else "")
    current = next((link for link in tabs if link.current), None)
    return {"tabs": tabs, "subtabs": subtabs, "current": current, "role": permissions.role_in(request.user, workspace)}


@register.simple_tag(takes_context=True)
def workspace_search_url(context):
    """The header's search box: the current workspace's document search, if the page is inside one."""
    request = context.get("request")
    workspace = context.get("workspace")
    if request is None or workspace is None or not request.user.is_authenticated:
        return ""
    return navigation.search_url(request.user, workspace)


@register.simple_tag(takes_context=True)
def can(context, action, workspace, obj=None):
    """{% can "view_usage" workspace as show_internals %}: may the signed-in user do the action (no query)."""
    request = context.get("request")
    user = request.user if request is not None else context.get("user")
    return user is not None and workspace is not None and permissions.can(user, action, workspace, obj)


@register.filter
def role_badge(role):
    return f"badge badge-{role}" if role else "badge"
