from corporate.dashboard import panel
from workspaces.models import Invitation, Workspace


@panel(order=10)
def my_workspaces(request):
    """Your workspaces with their counts, and invitations waiting for you (2 queries)."""
    workspaces = list(Workspace.objects.for_list(request.user).filter(archived=False)[:6])
    invitations = list(
        Invitation.objects.pending().filter(email__iexact=request.user.email).select_related("workspace")[:5]
    )
    return {"template": "workspaces/_dashboard.html", "workspaces": workspaces, "invitations": invitations}
