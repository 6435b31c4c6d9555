from corporate import pagecache
from corporate.dashboard import panel
from workspaces.models import Invitation, Workspace


@panel(order=10)
def my_workspaces(request):
    """Your workspaces with their counts, and invitations waiting for you (2 queries, none when cached)."""
    user = request.user

    def build():
        workspaces = list(Workspace.objects.for_list(user).filter(archived=False)[:6])
        invitations = list(
            Invitation.objects.pending().filter(email__iexact=user.email).select_related("workspace")[:5]
        )
        return workspaces, invitations

    workspaces, invitations = pagecache.cached("dashboard-workspaces", user, build)
    return {"template": "workspaces/_dashboard.html", "workspaces": workspaces, "invitations": invitations}
