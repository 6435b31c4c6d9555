from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from corporate import mail, pagecache
from workspaces import permissions, services
from workspaces.forms import DeleteWorkspaceForm, InvitationForm, RoleForm, WorkspaceForm, WorkspaceSettingsForm
from workspaces.models import Invitation, Membership, Workspace
from workspaces.roles import Role


def _workspace(request, slug, action="view"):
    return permissions.get_workspace_for(request.user, slug, action)


def _membership(request, workspace, pk):
    membership = Membership.objects.filter(workspace=workspace, pk=pk).select_related("user", "workspace").first()
    if membership is None:
        raise Http404("No such member")
    return membership


def _invitation(request, workspace, pk):
    invitation = Invitation.objects.filter(workspace=workspace, pk=pk).select_related("workspace").first()
    if invitation is None:
        raise Http404("No such invitation")
    return invitation


def _role_context(request, workspace):
    user = request.user
    return {
        "workspace": workspace,
        "my_role": permissions.role_in(user, workspace),
        "can_manage_members": permissions.can(user, "manage_members", workspace),
        "can_manage_settings": permissions.can(user, "manage_settings", workspace),
        "can_delete": permissions.can(user, "delete_workspace", workspace),
        "can_manage_owners": permissions.can(user, "manage_owners", workspace),
    }


def _counts(request, workspace):
    """Members, documents and assistants of the workspace (1 query), to say what deleting it loses."""
    return Workspace.objects.filter(pk=workspace.pk).for_list(request.user).first()


@login_required
def workspace_list(request):
    user = request.user

    def build():
        workspaces = list(Workspace.objects.for_list(user))
        invitations = Invitation.objects.pending().filter(email__iexact=user.email).select_related("workspace")
        return workspaces, list(invitations)

    # Cached until a write to these workspaces, memberships or invitations (corporate.pagecache).
    workspaces, invitations = pagecache.cached("workspace-list", user, build)
    return render(request, "workspaces/list.html", {"workspaces": workspaces, "invitations": invitations})


@login_required
def workspace_create(request):
    form = WorkspaceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            workspace = services.create_workspace(request.user, **form.cleaned_data)
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Workspace “{workspace.name}” created. Invite your team next.")
            return redirect("workspaces:members", workspace.slug)
    return render(request, "workspaces/create.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def workspace_detail(request, slug):
    workspace = _workspace(request, slug)
    counts = _counts(request, workspace)
    context = _role_context(request, workspace)
    context["counts"] = counts
    return render(request, "workspaces/detail.html", context)


@login_required
def workspace_settings(request, slug):
    workspace = _workspace(request, slug, "manage_settings")
    form = WorkspaceSettingsForm(request.POST or None, instance=workspace)
    if request.method == "POST" and form.is_valid():
        services.update_workspace(request.user, workspace, **{f: form.cleaned_data[f] for f in form.Meta.fields})
        messages.success(request, "Settings saved.")
        return redirect("workspaces:settings", workspace.slug)
    context = _role_context(request, workspace)
    context.update(form=form, delete_form=DeleteWorkspaceForm(workspace=workspace), counts=_counts(request, workspace))
    return render(request, "workspaces/settings.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def workspace_archive(request, slug):
    workspace = _workspace(request, slug, "manage_settings")
    value = request.POST.get("archived")
    if value not in ("0", "1"):
        messages.error(request, "Choose to archive (1) or restore (0) the workspace.")
        return redirect("workspaces:settings", workspace.slug)
    archive = value == "1"
    services.set_archived(request.user, workspace, archive)
    messages.success(request, "Workspace archived: it is now read-only." if archive else "Workspace restored.")
    return redirect("workspaces:settings", workspace.slug)


@login_required
@require_POST
def workspace_delete(request, slug):
    workspace = _workspace(request, slug, "delete_workspace")
    form = DeleteWorkspaceForm(request.POST, workspace=workspace)
    if form.is_valid():
        try:
            services.delete_workspace(request.user, workspace, form.cleaned_data["confirm"].strip())
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Workspace “{workspace.name}” and everything in it were deleted.")
            return redirect("workspaces:list")
    context = _role_context(request, workspace)
    context.update(form=WorkspaceSettingsForm(instance=workspace), delete_form=form, counts=_counts(request, workspace))
    return render(request, "workspaces/settings.html", context, status=400)


@login_required
def workspace_members(request, slug, invite_form=None, status=200):
    workspace = _workspace(request, slug)
    context = _role_context(request, workspace)
    # 2 queries: the members with their users, the invitations (admins only).
    context["memberships"] = list(
        Membership.objects.filter(workspace=workspace).select_related("user").order_by("user__email")
    )
    if context["can_manage_members"]:
        context["invitations"] = list(Invitation.objects.filter(workspace=workspace).select_related("invited_by"))
        # Without a mail server nobody receives the invitation mail: admins pass the link on themselves.
        context["show_invitation_links"] = not mail.delivers_mail()
        if context["show_invitation_links"]:
            base = mail.site_url(request)
            for invitation in context["invitations"]:
                invitation.link = base + invitation.get_accept_url()
        context["invite_form"] = invite_form or InvitationForm()
        # Roles this user may hand out: owners only by owners.
        context["assignable_roles"] = [
            (value, label) for value, label in Role.choices if value != Role.OWNER or context["can_manage_owners"]
        ]
    context["roles"] = Role.choices
    return render(request, "workspaces/members.html", context, status=status)


def _back_to_members(workspace):
    return redirect("workspaces:members", workspace.slug)


@login_required
@require_POST
def member_role(request, slug, pk):
    workspace = _workspace(request, slug, "manage_members")
    membership = _membership(request, workspace, pk)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the listed roles.")
        return _back_to_members(workspace)
    try:
        services.change_role(request.user, membership, form.cleaned_data["role"])
    except services.WorkspaceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{membership.user.display_name} is now {membership.get_role_display().lower()}.")
    return _back_to_members(workspace)


@login_required
@require_POST
def member_remove(request, slug, pk):
    workspace = _workspace(request, slug, "manage_members")
    membership = _membership(request, workspace, pk)
    try:
        services.remove_member(request.user, membership)
    except services.WorkspaceError as exc:
        messages.error(request, exc.message)
        return _back_to_members(workspace)
    messages.success(request, f"{membership.user.display_name} was removed from the workspace.")
    if membership.user_id == request.user.pk:
        return redirect("workspaces:list")
    return _back_to_members(workspace)


@login_required
@require_POST
def workspace_leave(request, slug):
    workspace = _workspace(request, slug, "leave")
    try:
        services.leave(request.user, workspace)
    except services.WorkspaceError as exc:
        messages.error(request, exc.message)
        return _back_to_members(workspace)
    messages.success(request, f"You left “{workspace.name}”.")
    return redirect("workspaces:list")


@login_required
@require_POST
def invitation_create(request, slug):
    workspace = _workspace(request, slug, "manage_members")
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            invitation = services.invite(
                request.user,
                workspace,
                form.cleaned_data["email"],
                form.cleaned_data["role"],
                base_url=request.build_absolute_uri("/"),
            )
        except services.WorkspaceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            if mail.delivers_mail():
                messages.success(request, f"Invitation sent to {invitation.email}.")
            else:
                messages.success(
                    request,
                    f"Invitation created for {invitation.email}. No mail server is configured: "
                    "copy its link from the list and send it yourself.",
                )
            return _back_to_members(workspace)
    return workspace_members(request, slug, invite_form=form, status=400)


@login_required
@require_POST
def invitation_resend(request, slug, pk):
    workspace = _workspace(request, slug, "manage_members")
    invitation = _invitation(request, workspace, pk)
    try:
        services.resend(request.user, invitation, base_url=request.build_absolute_uri("/"))
    except services.WorkspaceError as exc:
        messages.error(request, exc.message)
    else:
        if mail.delivers_mail():
            messages.success(request, f"Invitation sent again to {invitation.email}, with a new link.")
        else:
            messages.success(
                request, f"Invitation for {invitation.email} renewed, with a new link to copy from the list."
            )
    return _back_to_members(workspace)


@login_required
@require_POST
def invitation_revoke(request, slug, pk):
    workspace = _workspace(request, slug, "manage_members")
    invitation = _invitation(request, workspace, pk)
    try:
        services.revoke(request.user, invitation)
    except services.WorkspaceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"The invitation for {invitation.email} was revoked.")
    return _back_to_members(workspace)


@login_required
def invitation_accept(request, token):
    """Anyone signed in may open an invitation link; only the addressee can accept it."""
    invitation = Invitation.objects.filter(token=token).select_related("workspace", "invited_by").first()
    if invitation is None:
        raise Http404("No such invitation")
    if invitation.state == "accepted" and invitation.accepted_by_id == request.user.pk:
        # Accepted already, e.g. by signing in for the first time through the link.
        return redirect(invitation.workspace)
    if invitation.state != "pending":
        problem, status = services.INVITATION_PROBLEMS[invitation.state], 410
    elif invitation.email.lower() != request.user.email.lower():
        problem, status = services.WRONG_EMAIL, 403
    else:
        problem, status = None, 200
    if request.method == "POST" and problem is None:
        try:
            services.accept(request.user, invitation)
        except services.WorkspaceError as exc:
            problem, status = exc.message, 410
        else:
            messages.success(request, f"Welcome to “{invitation.workspace.name}”.")
            return redirect(invitation.workspace)
    return render(request, "workspaces/accept.html", {"invitation": invitation, "problem": problem}, status=status)
