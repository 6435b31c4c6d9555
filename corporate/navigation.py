"""The site's main areas, shown in the top navigation and on the dashboard."""

from django.urls import NoReverseMatch, reverse

AREAS = [
    # (url name, label, description)
    ("workspaces:list", "Workspaces", "Your teams, their members and invitations."),
    ("documents:home", "Documents", "Upload files and search what they say."),
    ("assistants:home", "Assistants", "Ask questions answered from your documents, with sources."),
    ("llmgateway:home", "Model gateway", "Models, API keys and cache statistics."),
]


def areas_for(request):
    found = []
    for name, label, description in AREAS:
        try:
            url = reverse(name)
        except NoReverseMatch:
            continue
        found.append({"url": url, "label": label, "description": description, "active": request.path.startswith(url)})
    return found


def navigation(request):
    # Error pages can render before the auth middleware has set request.user (a bad Host header).
    user = getattr(request, "user", None)
    return {"nav_areas": areas_for(request) if user is not None and user.is_authenticated else []}
