"""Gateway pages: the landing page, models, API keys, the cache page and the Usage page of a workspace."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from llmgateway.cache import entries, stats
from llmgateway.cache.entries import API_KEY_TTL
from llmgateway.forms import ApiKeyForm, CachePolicyForm, UsageFilterForm
from llmgateway.metering import charts, configure, quota, reports
from llmgateway.metering.configure import LimitForm
from llmgateway.models import ApiKey, Limit, LimitKind, ModelConfig, Scope
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


# Usage ------------------------------------------------------------------------------------------------

HOURLY_DAYS = 7  # the range of the page by hour when no start is given


def _usage_filters(request):
    form = UsageFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return form, None
    data = form.cleaned_data if request.GET else {}
    bucket = data.get("bucket") or "day"
    since, until = data.get("since"), data.get("until")
    if bucket == "hour" and since is None:
        # By hour, a week unless asked otherwise: 168 bars a chart can show (720 would be a smear).
        since = reports.date_range(None, until, default_days=HOURLY_DAYS)[0].date()
    return form, {"since": since, "until": until, "bucket": bucket}


def _limit_section(workspace, bound=None):
    """The limits part of the page from one query: the forms, and the rows of people and keys with limits of their own.

    bound: (target, form) of a form posted with errors, shown instead of a fresh one.
    """
    rows = list(
        Limit.objects.filter(workspace=workspace, kind__in=[LimitKind.WORKSPACE, LimitKind.USER, LimitKind.KEY])
        .select_related("user", "api_key")
        .order_by("pk")
    )
    own = {LimitKind.WORKSPACE: None, LimitKind.USER: None}
    people, keys = [], []
    for row in rows:
        if row.kind == LimitKind.KEY:
            keys.append(row)
        elif row.user_id is not None:
            people.append(row)
        elif row.api_key_id is None:
            own[row.kind] = row
    forms_ = []
    for target, label, kind in (
        ("workspace", "Whole workspace", LimitKind.WORKSPACE),
        ("members", "Each member (without limits of their own)", LimitKind.USER),
    ):
        instance = own[kind] or Limit(kind=kind, workspace=workspace)
        form = bound[1] if bound and bound[0] == target else LimitForm(instance=instance, prefix=target)
        forms_.append({"target": target, "label": label, "form": form})
    people.sort(key=lambda row: row.user.email)
    keys.sort(key=lambda row: (row.api_key.name if row.api_key else "", row.pk))
    return {"limit_forms": forms_, "member_limits": people, "key_limits": keys}


def _usage_page(request, workspace, status=200, bound=None):
    form, filters = _usage_filters(request)
    is_admin = permissions.can(request.user, "view_usage", workspace)
    context = {"filter_form": form, "is_admin": is_admin, "can_manage_settings": False}
    if filters is None:
        status = 400
        filters = {"since": None, "until": None, "bucket": "day"}
    usage = reports.usage_for(request.user, workspace, filters["since"], filters["until"])
    points = reports.series(usage, filters["bucket"])
    bucket = filters["bucket"]
    context.update(
        totals=reports.total_of(points),
        charts=charts.bar_charts(
            points,
            (
                ("requests", "Requests", "count"),
                ("tokens", "Tokens", "count"),
                ("cost", "Cost (USD)", "money"),
                ("hit_rate", "Cache hit rate", "percent"),
            ),
            bucket=bucket,
        ),
        breakdowns=[
            (title, reports.breakdown(usage, by))
            for by, title in (
                ("user", "By person"),
                ("assistant", "By assistant"),
                ("model", "By model"),
                ("key", "By API key"),
            )
            if is_admin or by in ("assistant", "model")
        ],
        quota=quota.for_user(workspace, request.user),
        range=_shown_range(filters),
        query=request.GET.urlencode(),
    )
    if permissions.can(request.user, "manage_settings", workspace):
        context.update(
            can_manage_settings=True,
            **_limit_section(workspace, bound),
            keys=list(ApiKey.objects.in_workspace(workspace).usable().order_by("name").only("pk", "name", "prefix")),
            person_form=bound[1] if bound and bound[0] in ("user", "key") else LimitForm(prefix="one"),
            person_target=bound[0] if bound and bound[0] in ("user", "key") else "user",
        )
    return render(request, "llmgateway/usage.html", _context(request, workspace, "usage", **context), status=status)


@login_required
def usage_page(request, slug):
    """Charts, breakdowns and quota: the workspace's for its admins, a member's own for everyone else."""
    workspace = _workspace(request, slug, "view")
    return _usage_page(request, workspace)


@login_required
@require_POST
def usage_limits(request, slug):
    """Save one scope's limits from the Usage page (admins)."""
    workspace = _workspace(request, slug, "manage_settings")
    target = request.POST.get("target")
    where, kind = {"workspace": workspace}, LimitKind.WORKSPACE
    if target == "members":
        kind = LimitKind.USER
    elif target == "user":
        from django.contrib.auth import get_user_model

        # The form names a person by email (a workspace may have thousands of members); `user` (an id) also works.
        email = (request.POST.get("email") or "").strip()
        members = get_user_model().objects.filter(memberships__workspace=workspace)
        user = (
            members.filter(email__iexact=email).first()
            if email
            else members.filter(pk=_int(request.POST.get("user"))).first()
        )
        form = LimitForm(request.POST, prefix="one")
        if user is None:
            form.is_valid()
            form.add_error(None, "Choose a member of this workspace.")
            return _usage_page(request, workspace, status=400, bound=("user", form))
        kind, where = LimitKind.USER, {"workspace": workspace, "user": user}
    elif target == "key":
        key = ApiKey.objects.in_workspace(workspace).filter(pk=_int(request.POST.get("key"))).first()
        form = LimitForm(request.POST, prefix="one")
        if key is None:
            form.is_valid()
            form.add_error(None, "Choose one of this workspace's keys.")
            return _usage_page(request, workspace, status=400, bound=("key", form))
        kind, where = LimitKind.KEY, {"api_key": key}
    elif target != "workspace":
        raise Http404("No such limits")
    prefix = target if target in ("workspace", "members") else "one"
    form = LimitForm(request.POST, prefix=prefix)
    if not form.is_valid():
        messages.error(request, "The limits were not saved: correct the fields marked below.")
        return _usage_page(request, workspace, status=400, bound=(target, form))
    configure.save_limits(kind, {name: form.cleaned_data[name] for name in Limit.FIELDS}, **where)
    messages.success(request, "Limits saved; they apply from the next request.")
    return redirect("llmgateway:usage", slug=workspace.slug)


def _shown_range(filters):
    start, end = reports.date_range(filters["since"], filters["until"])
    return start, end - timedelta(days=1)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@login_required
def usage_csv(request, slug):
    """The page's breakdown (`by`, default day) as CSV: the same columns as `manage.py usage_report --format csv`."""
    import csv

    from django.http import HttpResponse

    from llmgateway.management.commands.usage_report import COLUMNS, csv_rows

    workspace = _workspace(request, slug, "view")
    form, filters = _usage_filters(request)
    if filters is None:
        return _usage_page(request, workspace, status=400)
    by = request.GET.get("by") or "day"
    if by not in reports.BREAKDOWNS or (
        by in ("user", "key") and not permissions.can(request.user, "view_usage", workspace)
    ):
        permissions.check(request.user, "view_usage", workspace)
        raise Http404("No such breakdown")
    usage = reports.usage_for(request.user, workspace, filters["since"], filters["until"])
    start, end = reports.date_range(filters["since"], filters["until"])
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"usage-{workspace.slug}-{by}-{start:%Y%m%d}-{(end.date() - timedelta(days=1)):%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.DictWriter(response, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(reports.breakdown(usage, by)))
    return response
