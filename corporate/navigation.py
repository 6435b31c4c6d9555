"""The site's main areas, shown in the top navigation and on the dashboard."""

from django.urls import NoReverseMatch, reverse

AREAS = [
    # (url name, label, description)
    ("workspaces:list", "Workspaces", "Your teams, their members and invitations."),
    ("documents:home", "Documents", "Upload files and search what they say."),
    ("assistants:home", "Assistants", "Ask questions answered from your documents, with sources."),
    ("llmgateway:home", "Model gateway", "Models, API keys and cache statistics."),
]

# Shown to staff only; the pages themselves check (workspaces.permissions.check_staff).
STAFF_AREAS = [
    ("people:list", "People", "Accounts: create, deactivate, reset passwords, see workspaces and roles."),
    ("audit:site", "Audit log", "Who did what, when, across the whole site."),
]


def areas_for(request):
    found = []
    user = getattr(request, "user", None)
    staff = user is not None and user.is_staff and user.is_active
    areas = [(*area, False) for area in AREAS] + ([(*area, True) for area in STAFF_AREAS] if staff else [])
    for name, label, description, staff_only in areas:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        found.append(
            {
                "url": url,
                "label": label,
                "description": description,
                "active": request.path.startswith(url),
                "staff": staff_only,
            }
        )
    return found


def navigation(request):
    # Error pages can render before the auth middleware has set request.user (a bad Host header).
    user = getattr(request, "user", None)
    return {"nav_areas": areas_for(request) if user is not None and user.is_authenticated else []}
