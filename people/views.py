"""User management for staff: the accounts, their workspaces and roles, and what was done to them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from audit.models import AuditEvent
from corporate.models import User
from people import services
from people.forms import UserCreateForm, UserSearchForm
from workspaces import permissions
from workspaces.models import Membership

PER_PAGE = 50
RECENT_EVENTS = 20


def _staff(request):
    permissions.check_staff(request.user, "User management")


def _person(request, pk):
    _staff(request)
    user = User.objects.filter(pk=pk).first()
    if user is None:
        raise Http404("No such user")
    return user


def _page_number(request):
    try:
        return max(1, min(int(request.GET.get("page", "1")), 100_000))
    except ValueError:
        return 1


@login_required
def user_list(request):
    _staff(request)
    form = UserSearchForm(request.GET or None)
    page = _page_number(request)
    people, has_next = [], False
    if not form.is_bound or form.is_valid():
        users = form.filter(User.objects.all()) if form.is_bound else User.objects.all()
        workspaces = (
            Membership.objects.filter(user=OuterRef("pk")).order_by().values("user").annotate(n=Count("pk")).values("n")
        )
        users = users.annotate(workspace_count=Coalesce(Subquery(workspaces, output_field=IntegerField()), 0))
        # One query: a page of users with their workspace counts, and one more row for "next page".
        start = (page - 1) * PER_PAGE
        people = list(users.order_by("email")[start : start + PER_PAGE + 1])
        has_next = len(people) > PER_PAGE
        people = people[:PER_PAGE]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "people": people,
        "page": page,
        "has_next": has_next,
        "has_previous": page > 1,
        "query": query.urlencode(),
    }
    return render(request, "people/list.html", context, status=400 if form.errors else 200)


@login_required
def user_create(request):
    _staff(request)
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.create_user(
                request.user,
                email=data["email"],
                full_name=data["full_name"],
                password=data["password1"] or None,
                base_url=request.build_absolute_uri("/"),
            )
        except services.PeopleError as exc:
            form.add_error(exc.field, exc.message)
        else:
            if data["how"] == "mail":
                messages.success(request, f"{user.email} was created and mailed a link to choose a password.")
            else:
                messages.success(request, f"{user.email} was created with the initial password you set.")
            return redirect("people:detail", user.pk)
    return render(request, "people/create.html", {"form": form}, status=400 if form.errors else 200)


@login_required
def user_detail(request, pk):
    person = _person(request, pk)
    # 3 queries besides the request's own: memberships with their workspaces, events by and about the person.
    memberships = list(Membership.objects.filter(user=person).select_related("workspace").order_by("workspace__name"))
    done_by = list(AuditEvent.objects.filter(actor_email=person.email).for_listing()[:RECENT_EVENTS])
    done_to = list(
        AuditEvent.objects.filter(object_type="user", object_id=str(person.pk)).for_listing()[:RECENT_EVENTS]
    )
    context = {
        "person": person,
        "memberships": memberships,
        "done_by": done_by,
        "done_to": done_to,
        "is_self": person.pk == request.user.pk,
        "may_manage": request.user.is_superuser or not person.is_superuser,
    }
    return render(request, "people/detail.html", context)


def _act(request, pk, change, done):
    person = _person(request, pk)
    try:
        change(request.user, person)
    except services.PeopleError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done(person))
    return redirect("people:detail", person.pk)


@login_required
@require_POST
def user_deactivate(request, pk):
    return _act(
        request,
        pk,
        services.deactivate,
        lambda p: f"{p.email} is deactivated: signed out everywhere, API tokens and keys revoked.",
    )


@login_required
@require_POST
def user_reactivate(request, pk):
    return _act(
        request, pk, services.reactivate, lambda p: f"{p.email} is active again and can sign in with their password."
    )


@login_required
@require_POST
def user_password_reset(request, pk):
    base_url = request.build_absolute_uri("/")
    return _act(
        request,
        pk,
        lambda actor, person: services.send_password_reset(actor, person, base_url),
        lambda p: f"A password reset mail was sent to {p.email}.",
    )
