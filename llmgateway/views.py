"""Gateway pages: the landing page, models, API keys and the cache page of a workspace."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from llmgateway.cache import entries, stats
from llmgateway.cache.entries import API_KEY_TTL
from llmgateway.forms import ApiKeyForm, CachePolicyForm
from llmgateway.models import ApiKey, ModelConfig, Scope
from llmgateway.v1.views import model_list
from workspaces import permissions
from workspaces.models import Workspace
from workspaces.navigation import sole_workspace


def api_base(request):
    """The /v1 base URL to show: SITE_URL when set, else the address this request came to (through the proxy)."""
    return (settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")) + "/v1"


def _workspace(request, slug, action):
    return permissions.get_workspace_for(request.user, slug, action)


def _context(request, workspace, tab, **extra):
    user = request.user
    return {
        "workspace": workspace,
        "tab": tab,
        "can_manage_keys": permissions.can(user, "manage_keys", workspace),
        "can_view_usage": permissions.can(user, "view_usage", workspace),
        "can_manage_settings": permissions.can(user, "manage_settings", workspace),
        "api_base": api_base(request),
        **extra,
    }


@login_required
def home(request):
    only = sole_workspace(request.user)
    if only is not None:
        return redirect("llmgateway:models", only.slug)
    models = model_list()
    workspaces = list(Workspace.objects.for_user(request.user).order_by("archived", "name"))
    for workspace in workspaces:
        workspace.my_role = permissions.role_in(request.user, workspace)
        workspace.is_admin = permissions.can(request.user, "manage_keys", workspace)
    return render(
        request,
        "llmgateway/home.html",
        {
            "workspaces": workspaces,
            "models": models,
            "sample_model": models[0]["id"] if models else "",
            "api_base": api_base(request),
        },
    )


@login_required
def workspace_home(request, slug):
    """The gateway of one workspace: its models page."""
    workspace = _workspace(request, slug, "view")
    return redirect("llmgateway:models", workspace.slug)


@login_required
def models_page(request, slug):
    workspace = _workspace(request, slug, "view")
    configs = list(ModelConfig.objects.for_listing())
    builtin = not any(c.name == "offline" for c in configs) and not ModelConfig.objects.filter(name="offline").exists()
    return render(
        request,
        "llmgateway/models.html",
        _context(
            request,
            workspace,
            "models",
            models=configs,
            sample_model=next((c.name for c in configs if c.is_default), configs[0].name if configs else "offline"),
            builtin_offline=builtin,
            default_deadline=settings.LLM_DEADLINE_SECONDS,
        ),
    )


def _keys_page(request, workspace, form, new_key=None, status=200):
    keys = list(ApiKey.objects.in_workspace(workspace).for_list())
    return render(
        request,
        "llmgateway/keys.html",
        _context(request, workspace, "keys", keys=keys, form=form, new_key=new_key, scopes=dict(Scope.choices)),
        status=status,
    )


@login_required
def keys(request, slug):
    workspace = _workspace(request, slug, "manage_keys")
    if request.method != "POST":
        return _keys_page(request, workspace, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        return _keys_page(request, workspace, form, status=400)
    key, full = ApiKey.create(
        workspace,
        form.cleaned_data["name"],
        request.user,
        scopes=form.cleaned_data["scopes"],
        expires_at=form.expires_at(),
    )
    # Rendered, not redirected: the full key exists only in this response.
    return _keys_page(request, workspace, ApiKeyForm(), new_key={"key": key, "text": full}, status=201)


@login_required
@require_POST
def revoke_key(request, slug, pk):
    workspace = _workspace(request, slug, "manage_keys")
    key = ApiKey.objects.in_workspace(workspace).filter(pk=pk).first()
    if key is None:
        raise Http404("No such key")
    key.revoke()
    # Recorded in the database, so true whatever the cache did (see llmgateway/auth.py).
    messages.success(
        request, f"The key “{key.name}” is revoked; requests with it are refused within {API_KEY_TTL} seconds."
    )
    return redirect("llmgateway:keys", slug=workspace.slug)


@login_required
def cache_page(request, slug):
    workspace = _workspace(request, slug, "view_usage")
    form = CachePolicyForm(instance=workspace)
    status = 200
    if request.method == "POST":
        permissions.check(request.user, "manage_settings", workspace)
        form = CachePolicyForm(request.POST, instance=workspace)
        if form.is_valid():
            form.save()
            messages.success(request, "Cache policy saved.")
            return redirect("llmgateway:cache", slug=workspace.slug)
        status = 400
    return render(
        request,
        "llmgateway/cache.html",
        _context(request, workspace, "cache", stats=stats.summary(workspace.pk), form=form),
        status=status,
    )


@login_required
@require_POST
def cache_clear(request, slug):
    workspace = _workspace(request, slug, "manage_settings")
    entries.clear_workspace(workspace.pk)
    messages.success(request, "Cleared: answers cached before now will not be served again.")
    return redirect("llmgateway:cache", slug=workspace.slug)
