"""The audit log pages: a workspace's events for its admins, every event for staff, and their CSV export."""

from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit.catalogue import ACTIONS
from audit.export import csv_lines
from audit.forms import AuditFilterForm
from audit.models import AuditEvent
from workspaces import permissions

PER_PAGE = 50


def _page_number(request):
    try:
        return max(1, min(int(request.GET.get("page", "1")), 100_000))
    except ValueError:
        return 1


def _log_page(request, events, template, context, *, site_wide):
    form = AuditFilterForm(request.GET or None, site_wide=site_wide)
    rows, has_next, page = [], False, _page_number(request)
    if not form.is_bound or form.is_valid():
        if form.is_bound:
            events = form.filter(events)
        # One query: a page of events and one more row to know whether another page follows.
        start = (page - 1) * PER_PAGE
        rows = list(events.for_listing()[start : start + PER_PAGE + 1])
        has_next = len(rows) > PER_PAGE
        rows = rows[:PER_PAGE]
    query = request.GET.copy()
    query.pop("page", None)
    context.update(
        form=form,
        events=rows,
        page=page,
        has_next=has_next,
        has_previous=page > 1,
        query=query.urlencode(),
        known_actions=sorted(ACTIONS.items()),
        filtered=any(value for key, value in request.GET.items() if key != "page"),
    )
    return render(request, template, context, status=400 if form.errors else 200)


def _export(request, events, name, *, site_wide, error_context):
    form = AuditFilterForm(request.GET or None, site_wide=site_wide)
    if form.is_bound and not form.is_valid():
        error_context.update(form=form, events=[], known_actions=sorted(ACTIONS.items()), filtered=True)
        return render(request, error_context.pop("template"), error_context, status=400)
    if form.is_bound:
        events = form.filter(events)
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(csv_lines(events.for_listing()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{name}-{stamp}.csv"'
    return response


@login_required
def workspace_log(request, slug):
    workspace = permissions.get_workspace_for(request.user, slug, "view_audit")
    events = AuditEvent.objects.filter(workspace_id=workspace.pk)
    return _log_page(request, events, "audit/workspace_log.html", {"workspace": workspace}, site_wide=False)


@login_required
def workspace_export(request, slug):
    workspace = permissions.get_workspace_for(request.user, slug, "view_audit")
    events = AuditEvent.objects.filter(workspace_id=workspace.pk)
    context = {"template": "audit/workspace_log.html", "workspace": workspace}
    return _export(request, events, workspace.slug, site_wide=False, error_context=context)


@login_required
def site_log(request):
    permissions.check_staff(request.user, "The site's audit log")
    return _log_page(request, AuditEvent.objects.all(), "audit/site_log.html", {}, site_wide=True)


@login_required
def site_export(request):
    permissions.check_staff(request.user, "The site's audit log")
    context = {"template": "audit/site_log.html"}
    return _export(request, AuditEvent.objects.all(), "all", site_wide=True, error_context=context)
