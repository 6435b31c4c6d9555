import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from assistants import answering, citing
from assistants.conversations import grouped
from assistants.forms import AssistantForm, FeedbackForm
from assistants.models import MAX_QUESTION_CHARS, Assistant, Conversation, Message, Role
from assistants.rendering import prerender_answers, render_answer
from corporate.api import parse_id
from workspaces import permissions
from workspaces.models import Workspace
from workspaces.navigation import sole_workspace
from workspaces.roles import ANYONES

CONVERSATIONS_SHOWN = 50
# A conversation page shows its latest messages; "Show earlier messages" pages back.
MESSAGES_SHOWN = 50


def default_model_name():
    """What an assistant without its own model answers with: the gateway's default model (cached)."""
    from llmgateway import registry

    spec = registry.get_spec(None)
    return spec.name if spec is not None else settings.LLM_DEFAULT_MODEL


def _assistant(request, slug, pk, action="view"):
    workspace = permissions.get_workspace_for(request.user, slug, "view")
    assistant = Assistant.objects.in_workspace(workspace).filter(pk=pk).first()
    if assistant is None:
        raise Http404("No such assistant")
    assistant.workspace = workspace
    permissions.check(request.user, action, workspace, assistant if action in ANYONES else None)
    return assistant


def _conversation(request, assistant, pk):
    """The user's own conversation; anyone else's is 404, even for admins."""
    conversation = Conversation.objects.of_user(request.user).filter(assistant=assistant, pk=pk).first()
    if conversation is None:
        raise Http404("No such conversation")
    conversation.assistant = assistant
    return conversation


@login_required
def home(request):
    """All assistants of the user's workspaces, grouped by workspace; the only workspace goes straight to its list."""
    only = sole_workspace(request.user)
    if only is not None:
        return redirect("assistants:list", only.slug)
    workspaces = list(Workspace.objects.for_user(request.user).filter(archived=False).order_by("name"))
    assistants = Assistant.objects.for_user(request.user).active().select_related("workspace").order_by("name")
    by_workspace = {ws.pk: [] for ws in workspaces}
    for assistant in assistants:
        by_workspace.setdefault(assistant.workspace_id, []).append(assistant)
    groups = [(ws, by_workspace[ws.pk], permissions.can(request.user, "create_assistant", ws)) for ws in workspaces]
    return render(request, "assistants/home.html", {"groups": groups, "default_model": default_model_name()})


@login_required
def assistant_list(request, slug):
    workspace = permissions.get_workspace_for(request.user, slug, "view")
    assistants = Assistant.objects.in_workspace(workspace).order_by("archived", "name")
    return render(
        request,
        "assistants/list.html",
        {
            "workspace": workspace,
            "assistants": list(assistants),
            "can_create": permissions.can(request.user, "create_assistant", workspace),
            "can_view_usage": permissions.can(request.user, "view_usage", workspace),
            "default_model": default_model_name(),
        },
    )


@login_required
def assistant_create(request, slug):
    workspace = permissions.get_workspace_for(request.user, slug, "create_assistant")
    form = AssistantForm(request.POST or None, workspace=workspace)
    if request.method == "POST" and form.is_valid():
        form.instance.workspace = workspace
        form.instance.created_by = request.user
        assistant = form.save()
        messages.success(request, f"Assistant “{assistant.name}” created. Ask it something.")
        return redirect(assistant)
    return render(
        request,
        "assistants/edit.html",
        {"workspace": workspace, "form": form, "assistant": None},
        status=400 if form.errors else 200,
    )


@login_required
def assistant_edit(request, slug, pk):
    assistant = _assistant(request, slug, pk, "edit_assistants")
    form = AssistantForm(request.POST or None, instance=assistant, workspace=assistant.workspace)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Assistant saved. Its next answers use the new settings.")
        return redirect("assistants:edit", slug, assistant.pk)
    return render(
        request,
        "assistants/edit.html",
        {"workspace": assistant.workspace, "form": form, "assistant": assistant},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def assistant_archive(request, slug, pk):
    assistant = _assistant(request, slug, pk, "edit_assistants")
    assistant.archived = request.POST.get("archived") == "1"
    assistant.save(update_fields=["archived", "updated_at"])
    assistant.bump_version()
    messages.success(request, "Assistant archived." if assistant.archived else "Assistant restored.")
    return redirect("assistants:list", slug)


@login_required
@require_http_methods(["GET", "POST"])
def assistant_delete(request, slug, pk):
    """A page that says what deleting the assistant loses (everyone's conversations with it); the POST deletes."""
    assistant = _assistant(request, slug, pk, "edit_assistants")
    if request.method == "POST":
        name = assistant.name
        assistant.delete()
        messages.success(request, f"Assistant “{name}” and its conversations were deleted.")
        return redirect("assistants:list", slug)
    # 1 query: the assistant's conversations, their people and messages, counted together.
    lost = Conversation.objects.filter(assistant=assistant).aggregate(
        conversations=Count("pk", distinct=True),
        people=Count("user", distinct=True),
        messages=Count("messages", distinct=True),
    )
    return render(
        request,
        "assistants/delete.html",
        {"workspace": assistant.workspace, "assistant": assistant, "lost": lost},
    )


@login_required
@require_POST
def assistant_try(request, slug, pk=None):
    """The edit page's "try it" box: answers with the form's current (unsaved) settings."""
    if pk is None:
        workspace = permissions.get_workspace_for(request.user, slug, "create_assistant")
        instance = Assistant(workspace=workspace)
    else:
        instance = _assistant(request, slug, pk, "edit_assistants")
        workspace = instance.workspace
    form = AssistantForm(request.POST, instance=instance, workspace=workspace)
    question = (request.POST.get("try_question") or "").strip()
    context = {"question": question, "workspace": workspace}
    try:
        question = answering.validate_question(question)
        if not form.is_valid():
            raise answering.AnswerError("Fix the highlighted settings first.", field=None)
        draft = form.save(commit=False)
        draft.archived = False
        preview = answering.preview(draft, question, form.cleaned_data.get("documents"))
    except answering.AnswerError as exc:
        context["error"] = exc.message
    else:
        context.update(preview)
        context["html"] = render_answer(preview["text"])
    return render(request, "assistants/_try_result.html", context)


def _chat_context(request, assistant, conversation):
    query = request.GET.get("q", "").strip()[:200]
    conversations = list(Conversation.objects.for_sidebar(request.user, assistant, query)[:CONVERSATIONS_SHOWN])
    turns, earlier = [], None
    if conversation is not None:
        turns, earlier = _latest_turns(conversation, request.GET.get("before", ""))
        # An answer its worker never finished reads as cut off, not as an empty bubble.
        answering.interrupt_if_stale(turns)
        _mark_changed_sources(turns)
        for message in turns:
            message.conversation = conversation
        prerender_answers(turns, assistant.workspace.slug)
    return {
        "workspace": assistant.workspace,
        "assistant": assistant,
        "conversation": conversation,
        "conversations": conversations,
        "conversation_groups": grouped(conversations),
        "query": query,
        "turns": turns,
        # The turn key to ask for the messages before the first one shown (None: this is the start).
        "earlier": earlier,
        "showing_earlier": conversation is not None and parse_id(request.GET.get("before")) is not None,
        "can_edit": permissions.can(request.user, "edit_assistants", assistant.workspace, assistant),
        "can_chat": permissions.can(request.user, "chat", assistant.workspace) and not assistant.archived,
        "max_question_chars": MAX_QUESTION_CHARS,
    }


def _latest_turns(conversation, before=""):
    """The last MESSAGES_SHOWN messages as the conversation reads (before turn key `before`, if given).

    Returns (messages, key of the earlier ones or None). A long conversation costs what a short one
    does: the same queries, the same number of rows and answers to render.
    """
    shown = conversation.messages.shown().alias(turn=Coalesce("question_id", "id"))
    before = parse_id(before)
    if before is not None:
        shown = shown.filter(turn__lt=before)
    latest = list(shown.with_versions().reverse()[: MESSAGES_SHOWN + 1])
    turns = latest[:MESSAGES_SHOWN][::-1]
    earlier = None
    if len(latest) > MESSAGES_SHOWN:
        first = turns[0]
        earlier = first.question_id or first.pk
    return turns, earlier


def _mark_changed_sources(turns):
    """Set `changed` on every citation whose document has since changed or gone: one query for all."""
    from documents.models import Document

    ids = {c["document_id"] for m in turns for c in (m.citations or [])}
    if not ids:
        return
    current = {d.pk: d.content_version for d in Document.objects.filter(pk__in=ids).only("pk", "sha256", "version")}
    for message in turns:
        for citation in message.citations or []:
            now = current.get(citation["document_id"])
            citation["changed"] = "deleted" if now is None else ("changed" if now != citation.get("version") else "")


@login_required
def chat(request, slug, pk):
    assistant = _assistant(request, slug, pk, "view")
    return render(request, "assistants/chat.html", _chat_context(request, assistant, None))


@login_required
def conversation_view(request, slug, pk, cid):
    assistant = _assistant(request, slug, pk, "view")
    conversation = _conversation(request, assistant, cid)
    return render(request, "assistants/chat.html", _chat_context(request, assistant, conversation))


def sse(event, data):
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def sse_response(events):
    response = StreamingHttpResponse(events, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    # nginx: pass each event on at once.
    response["X-Accel-Buffering"] = "no"
    return response


def stream_turn(request, turn, render_html=True):
    """Server-sent events for one turn; the final event carries the stored answer (as HTML for pages)."""

    def events():
        for event, data in turn.events():
            if event == "done":
                payload = {"answer_id": data.pk, "cache_hit": data.cache_hit, "status": data.status}
                if render_html:
                    _mark_changed_sources([data])
                    payload["html"] = render_to_string(
                        "assistants/_message.html",
                        {"message": data, "assistant": turn.assistant, "workspace": turn.assistant.workspace},
                        request=request,
                    )
                else:
                    from assistants.api import MessageSerializer

                    payload["message"] = MessageSerializer(data).data
                yield sse("done", payload)
            elif event == "error":
                # What the JSON answer's status and Retry-After say.
                failure = turn.failure
                details = {"detail": failure.message, "status": failure.status, "retry_after": failure.retry_after}
                if render_html:
                    # The page gets them in an event of their own first (it says when to ask again), then the
                    # text as before: a page loaded before "failure" existed still shows it.
                    yield sse("failure", details)
                    yield sse("error", data)
                else:
                    yield sse("error", details)
            else:
                yield sse(event, data)

    return sse_response(events())


@login_required
@require_POST
def ask(request, slug, pk):
    """Ask a question (or regenerate the last answer); the answer streams back as server-sent events."""
    assistant = _assistant(request, slug, pk, "chat")
    cid = request.POST.get("conversation") or ""
    if cid:
        conversation_id = parse_id(cid)
        if conversation_id is None:
            raise Http404("No such conversation")
        conversation = _conversation(request, assistant, conversation_id)
    else:
        conversation = Conversation.objects.create(assistant=assistant, user=request.user)
    regenerate = request.POST.get("regenerate") == "1"
    redo = None
    if regenerate and request.POST.get("answer"):
        # Regenerate this answer (of this conversation), not just the latest one.
        mid = request.POST["answer"]
        mid = parse_id(mid)
        redo = mid is not None and conversation.messages.filter(pk=mid, role=Role.ASSISTANT).first()
        if not redo:
            return JsonResponse({"detail": "No such answer in this conversation.", "field": "answer"}, status=404)
    try:
        turn = answering.start_turn(
            assistant, conversation, request.user, request.POST.get("question", ""), regenerate=regenerate, answer=redo
        )
    except answering.AnswerError as exc:
        if not conversation.messages.exists() and not cid:
            conversation.delete()
        # Refused before any stream starts: the page keeps the question in the box and shows why.
        return JsonResponse({"detail": exc.message, "field": "question"}, status=exc.status)
    if not cid:
        # Tell the page which conversation it is now in.
        bar = render_to_string(
            "assistants/_conversation_bar.html",
            {"conversation": conversation, "assistant": assistant, "workspace": assistant.workspace},
            request=request,
        )
        prefix = sse(
            "conversation",
            {
                "id": conversation.pk,
                "url": conversation.get_absolute_url(),
                "title": conversation.title,
                "time": timezone.localtime(conversation.updated_at).strftime("%H:%M"),
                "bar": bar,
            },
        )
        response = stream_turn(request, turn)
        response.streaming_content = _prepend(prefix, response.streaming_content)
        return response
    return stream_turn(request, turn)


def _prepend(first, rest):
    yield first.encode()
    yield from rest


@login_required
@require_POST
def feedback(request, slug, mid):
    workspace = permissions.get_workspace_for(request.user, slug, "chat")
    message = (
        Message.objects.in_workspace(workspace)
        .filter(pk=mid, role=Role.ASSISTANT, conversation__user=request.user)
        .select_related("conversation__assistant")
        .first()
    )
    if message is None:
        raise Http404("No such message")
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return render(
            request, "errors/error.html", {"title": "Bad feedback", "message": "Choose up or down."}, status=400
        )
    message.feedback = form.cleaned_data["feedback"]
    message.feedback_comment = form.cleaned_data["comment"]
    message.save(update_fields=["feedback", "feedback_comment"])
    if not request.headers.get("HX-Request"):
        # A plain form post (no script, or pressed before the page wired the button): back to the conversation.
        return redirect(message.conversation)
    return render(request, "assistants/_feedback.html", {"message": message, "workspace": workspace})


def own_answer(user, workspace, mid, action="chat"):
    """One answer in the user's own conversations of this workspace; anyone else's is 404."""
    queryset = Message.objects.in_workspace(workspace).filter(role=Role.ASSISTANT)
    answer = permissions.get_own_object_for(
        user, queryset.select_related("conversation__assistant__workspace"), action, owner="conversation__user", pk=mid
    )
    return answer


@login_required
@require_POST
def show_version(request, slug, mid):
    """Show this version of an answer (‹ 1/2 ›); the choice is kept."""
    workspace = permissions.get_workspace_for(request.user, slug, "chat")
    answer = own_answer(request.user, workspace, mid)
    answer.make_current()
    if not request.headers.get("HX-Request"):
        return redirect(answer.conversation)
    answer = Message.objects.with_versions().get(pk=answer.pk)
    answering.interrupt_if_stale([answer])
    _mark_changed_sources([answer])
    assistant = Assistant(pk=answer.conversation.assistant_id, workspace=workspace)
    return render(
        request, "assistants/_message.html", {"message": answer, "workspace": workspace, "assistant": assistant}
    )


@login_required
def citation(request, slug, mid, n):
    """The passage an answer cites as [n], with what the answer quoted from it marked.

    For the chat's side panel (htmx) or as a page of its own (a new tab on phones).
    """
    from documents.models import Chunk

    workspace = permissions.get_workspace_for(request.user, slug, "view")
    answer = own_answer(request.user, workspace, mid, "view")
    cited = next((c for c in answer.citations or [] if c.get("n") == n), None)
    if cited is None:
        raise Http404("No such source")
    _mark_changed_sources([answer])
    chunk = (
        Chunk.objects.in_workspace(workspace)
        .filter(pk=cited.get("chunk_id"), document_id=cited.get("document_id"))
        .only("pk", "text")
        .order_by()
        .first()
    )
    passage = None
    if chunk is not None:
        passage, _ = citing.mark_passage(chunk.text, citing.quoted_parts(answer.content, n), cited.get("snippet", ""))
    context = {"answer": answer, "cited": cited, "n": n, "passage": passage, "workspace": workspace}
    if request.headers.get("HX-Request"):
        return render(request, "assistants/_passage.html", context)
    return render(request, "assistants/citation.html", context)


@login_required
def usage(request, slug):
    """Usage per assistant for admins: counts, tokens, cost, cache hits, feedback — never content.

    Answers, tokens and cost come from the gateway's daily usage totals (a few rows per assistant and
    day), so the page costs the same however many messages the workspace holds; conversations and
    people are counted on the conversations, feedback on the answers that have some (a partial index).
    """
    from llmgateway.models import CacheOutcome, UsageDay

    workspace = permissions.get_workspace_for(request.user, slug, "view_usage")
    answered = ~Q(cache__in=[CacheOutcome.ERROR, CacheOutcome.REFUSED])
    from_cache = Q(cache__in=[CacheOutcome.HIT, CacheOutcome.COALESCED])
    totals = {
        row["assistant_id"]: row
        for row in UsageDay.objects.filter(workspace=workspace, assistant_id__gt=0)
        .values("assistant_id")
        .annotate(
            answer_count=Sum("requests", filter=answered),
            hits=Sum("requests", filter=from_cache),
            tokens=Sum("prompt_tokens") + Sum("completion_tokens"),
            cost=Sum("cost"),
        )
        .order_by()
    }
    conversations = {
        row["assistant_id"]: row
        for row in Conversation.objects.filter(assistant__workspace=workspace)
        .values("assistant_id")
        .annotate(conversation_count=Count("id"), user_count=Count("user_id", distinct=True))
        .order_by()
    }
    feedback = {
        row["conversation__assistant_id"]: row
        for row in Message.objects.filter(conversation__assistant__workspace=workspace)
        .exclude(feedback="")
        .values("conversation__assistant_id")
        .annotate(up=Count("feedback", filter=Q(feedback="up")), down=Count("feedback", filter=Q(feedback="down")))
        .order_by()
    }
    rows = list(Assistant.objects.in_workspace(workspace).order_by("name"))
    for assistant in rows:
        figures = {"answer_count": 0, "hits": 0, "tokens": 0, "cost": 0, "conversation_count": 0, "user_count": 0}
        figures.update({"up": 0, "down": 0})
        for source in (totals, conversations, feedback):
            row = source.get(assistant.pk, {})
            figures.update({k: row[k] for k in figures if row.get(k) is not None})
        for name, value in figures.items():
            setattr(assistant, name, value)
    return render(request, "assistants/usage.html", {"workspace": workspace, "rows": rows})
