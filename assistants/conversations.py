"""The user's conversation list: grouping by date, rename, pin, delete (with a confirmation), export.

Every view fetches the conversation through `permissions.get_own_object_for`:
a conversation is private to its owner, so anyone else (an admin too) gets 404.
"""

import json
from datetime import timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST

from assistants.answering import interrupt_if_stale
from assistants.models import Conversation, Role
from corporate.redirects import redirect_next
from workspaces import permissions

EXPORT_FORMATS = {"md": "text/markdown; charset=utf-8", "json": "application/json"}


def own_conversation(user, slug, pk, cid, action="view"):
    """The user's own conversation with assistant `pk` of workspace `slug`."""
    permissions.get_workspace_for(user, slug, "view")
    queryset = Conversation.objects.filter(assistant_id=pk, assistant__workspace__slug=slug).select_related(
        "assistant__workspace"
    )
    return permissions.get_own_object_for(user, queryset, action, pk=cid)


def grouped(conversations, now=None):
    """[(label, [conversation, …]), …]: pinned first, then by how recently each was used."""
    now = timezone.localtime(now)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    bounds = [
        ("Today", today),
        ("Yesterday", today - timedelta(days=1)),
        ("Previous 7 days", today - timedelta(days=7)),
        ("Previous 30 days", today - timedelta(days=30)),
    ]
    groups = {}
    for conversation in conversations:
        if conversation.pinned:
            label = "Pinned"
        else:
            when = timezone.localtime(conversation.updated_at)
            label = next((name for name, start in bounds if when >= start), "Older")
        groups.setdefault(label, []).append(conversation)
    order = ["Pinned", *(name for name, _ in bounds), "Older"]
    return [(label, groups[label]) for label in order if label in groups]


def _back(request, conversation):
    """Where to go after a change: the page the user came from on this site, else the conversation."""
    return redirect_next(request, request.POST.get("next"), conversation)


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200, strip=True, error_messages={"required": "Give the conversation a title."})


@login_required
@require_http_methods(["GET", "POST"])
def rename(request, slug, pk, cid):
    conversation = own_conversation(request.user, slug, pk, cid)
    form = RenameForm(request.POST or None, initial={"title": conversation.title})
    if request.method == "POST" and form.is_valid():
        conversation.title = form.cleaned_data["title"]
        conversation.save(update_fields=["title"])
        messages.success(request, "Conversation renamed.")
        return redirect(conversation)
    return render(
        request,
        "assistants/conversation_rename.html",
        {"conversation": conversation, "assistant": conversation.assistant, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def pin(request, slug, pk, cid):
    conversation = own_conversation(request.user, slug, pk, cid)
    conversation.pinned = request.POST.get("pinned", "1") == "1"
    conversation.save(update_fields=["pinned"])
    messages.success(request, "Conversation pinned." if conversation.pinned else "Conversation unpinned.")
    return _back(request, conversation)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request, slug, pk, cid):
    """GET: what will be lost, and a button; POST: delete."""
    conversation = own_conversation(request.user, slug, pk, cid)
    if request.method == "POST":
        conversation.delete()
        messages.success(request, "Conversation deleted.")
        return redirect("assistants:chat", slug, pk)
    counts = conversation.messages.values("role").order_by().annotate(n=Count("pk"))
    by_role = {row["role"]: row["n"] for row in counts}
    return render(
        request,
        "assistants/conversation_delete.html",
        {
            "conversation": conversation,
            "assistant": conversation.assistant,
            "questions": by_role.get(Role.USER, 0),
            "answers": by_role.get(Role.ASSISTANT, 0),
        },
    )


def export_data(conversation):
    """The conversation as it reads (questions and the answers shown), as plain data."""
    rows = list(conversation.messages.shown().with_versions())
    interrupt_if_stale(rows)
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "assistant": conversation.assistant.name,
        "workspace": conversation.assistant.workspace.name,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "messages": [
            {
                "role": m.role,
                "content": m.content,
                "created_at": m.created_at,
                **(
                    {
                        "status": m.status,
                        "version": m.version,
                        "version_count": m.version_count,
                        "sources": [
                            {k: c.get(k) for k in ("n", "title", "location", "page", "snippet")}
                            for c in m.citations or []
                        ],
                    }
                    if m.role == Role.ASSISTANT
                    else {}
                ),
            }
            for m in rows
        ],
    }


def export_markdown(data):
    lines = [f"# {data['title'] or 'Conversation'}", ""]
    lines += [
        f"{data['assistant']} · {data['workspace']} · {timezone.localtime(data['updated_at']):%Y-%m-%d %H:%M}",
        "",
    ]
    for message in data["messages"]:
        who = "You" if message["role"] == Role.USER else data["assistant"]
        lines += [f"## {who}", "", message["content"].strip() or "_(no answer)_", ""]
        sources = message.get("sources") or []
        if sources:
            lines += ["Sources:", ""]
            for source in sources:
                where = f", {source['location']}" if source.get("location") else ""
                lines.append(f"{source['n']}. {source['title']}{where}")
            lines.append("")
    return "\n".join(lines)


@login_required
def export(request, slug, pk, cid, fmt):
    if fmt not in EXPORT_FORMATS:
        raise Http404("No such format")
    conversation = own_conversation(request.user, slug, pk, cid)
    data = export_data(conversation)
    if fmt == "json":
        body = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    else:
        body = export_markdown(data)
    response = HttpResponse(body, content_type=EXPORT_FORMATS[fmt])
    name = slugify(conversation.title)[:60] or f"conversation-{conversation.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
