import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import DisallowedHost, PermissionDenied
from django.db import connection
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from corporate.auth import cooloff_words, password_reset_limit
from corporate.dashboard import panels_for
from corporate.errors import BODY_LIMIT_ERRORS, OPENAI, body_limit, error_response, style_for
from corporate.forms import SignInForm
from corporate.models import ColorScheme
from corporate.navigation import areas_for
from corporate.redirects import redirect_next

log = logging.getLogger(__name__)


class SignInView(auth_views.LoginView):
    """Django's sign-in page; a signed-in user is sent on, never into a redirect loop."""

    authentication_form = SignInForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        from sso.providers import all_providers, form_action_origins

        providers = all_providers()
        self.request.sso_form_action = form_action_origins(providers)
        return {**super().get_context_data(**kwargs), "sso_providers": providers}

    def form_valid(self, form):
        """A right password; an account with a second factor goes on to the second step before it is signed in."""
        from twofactor import flow

        second_step = flow.begin(self.request, form.get_user(), self.get_success_url())
        if second_step is not None:
            return second_step
        response = super().form_valid(form)
        flow.after_password_login(self.request, form.get_user())
        return response

    def get_redirect_url(self):
        url = super().get_redirect_url()
        # ?next= pointing back at the sign-in page would loop (Django raises); go to the dashboard.
        return "" if url and url.split("?")[0] == self.request.path else url


def admin_login(request):
    """The admin's own sign-in page would skip the second step: the admin signs in through the site's."""
    from django.contrib.auth import REDIRECT_FIELD_NAME
    from django.utils.http import urlencode

    if request.user.is_authenticated:
        # Signed in but not staff (the admin sends staff on): sending them to sign in would loop.
        return error_response(
            request, 403, "Not allowed", "The admin is for staff. Your account is not a staff account.", "not_staff"
        )
    return HttpResponseRedirect(
        reverse("login") + "?" + urlencode({"next": request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")})
    )


def locked_out(request, original_response=None, credentials=None):
    """What a paused sign-in gets (AXES_LOCKOUT_CALLABLE): the styled page, saying for how long."""
    return render(request, "registration/locked_out.html", {"cooloff": cooloff_words()}, status=429)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset request, with hourly limits per client address and per account.

    Over the account's limit the answer is the usual "check your email", with
    no mail, so it never tells whether an account exists or is being targeted.
    Over the address's limit the page says to try again later.
    """

    def form_valid(self, form):
        limit = password_reset_limit(self.request, form.cleaned_data["email"])
        if limit == "address":
            return render(self.request, "registration/password_reset_limited.html", status=429)
        if limit == "account":
            return HttpResponseRedirect(self.get_success_url())
        if not settings.SITE_URL:
            return super().form_valid(form)  # links to the address the request came to (ALLOWED_HOSTS)
        # The link goes to SITE_URL, never to a Host header the request may have chosen.
        site = urlsplit(settings.SITE_URL)
        form.save(
            domain_override=site.netloc,
            use_https=site.scheme == "https",
            token_generator=self.token_generator,
            from_email=self.from_email,
            email_template_name=self.email_template_name,
            subject_template_name=self.subject_template_name,
            request=self.request,
            html_email_template_name=self.html_email_template_name,
            extra_email_context=self.extra_email_context,
        )
        return HttpResponseRedirect(self.get_success_url())


@login_required
@never_cache
def system(request):
    """The System page (staff): health, pools, slow queries, cache hit rates and the last hour."""
    if not request.user.is_staff:
        raise PermissionDenied("The System page is for staff.")
    from corporate.observability.system import snapshot

    return render(request, "corporate/system.html", snapshot())


def favicon(request):
    """Browsers ask for /favicon.ico on their own; the site's icon is an SVG among the static files."""
    from django.templatetags.static import static

    return redirect(static("img/favicon.svg"), permanent=True)


@login_required
@require_POST
def color_scheme(request):
    """The user menu's colour scheme switch (system, light, dark), kept on the account."""
    scheme = request.POST.get("color_scheme", "")
    wants_json = "application/json" in request.headers.get("Accept", "")
    if scheme not in ColorScheme.values:
        message = f"Choose a colour scheme: {', '.join(ColorScheme.values)}."
        if wants_json:
            return JsonResponse({"detail": message, "color_scheme": [message]}, status=400)
        return error_response(request, 400, "Unknown colour scheme", message)
    request.user.color_scheme = scheme
    request.user.save(update_fields=["color_scheme"])
    if wants_json:
        return JsonResponse({"color_scheme": scheme})
    return redirect_next(request, request.POST.get("next", ""))


@login_required
def dashboard(request):
    """The areas of the site, and the panels the apps register (corporate.dashboard)."""
    return render(request, "corporate/dashboard.html", {"areas": areas_for(request), "panels": panels_for(request)})


def _check_database():
    from corporate.backends.postgresql.green import answer_within

    # A frozen database is reported within HEALTH_DATABASE_SECONDS (under gevent), not after the
    # DB_QUERY_TIMEOUT a request may wait: a load balancer's probe gives up sooner than that.
    with answer_within(settings.HEALTH_DATABASE_SECONDS), connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache():
    """A write and a read: a Redis that answers PING but refuses writes (out of memory, a read-only
    replica) is not a working cache."""
    client_getter = getattr(cache, "client", None)
    if client_getter is not None and hasattr(client_getter, "get_client"):
        # django-redis swallows errors (IGNORE_EXCEPTIONS); ask Redis directly.
        client = client_getter.get_client(write=True)
        key = cache.make_key("health:probe")
        client.set(key, b"1", ex=5)
        if client.get(key) != b"1":
            raise RuntimeError("Redis did not return what was stored")
        return
    cache.set("health:probe", "1", 5)
    if cache.get("health:probe") != "1":
        raise RuntimeError("cache did not return what was stored")


def _check_workers():
    from corporate.workers import worker_state

    return worker_state()


def _search_state():
    """Hybrid (words and meaning) or lexical only, with the reason: a warning, never a 503 (search still works)."""
    from documents import vectors

    try:
        state = vectors.state()
    except Exception as exc:  # reported, not raised: /health answers about the parts that serve
        log.warning("health: vector search state unreadable: %s", exc.__class__.__name__)
        return {"mode": "unknown"}
    if state.available:
        found = {"mode": "hybrid", "vectors": state.backend}
    else:
        found = {"mode": "lexical", "warning": f"Search by meaning is off: {state.problem}"}
    return {**found, "answer_judge": _answer_judge()}


def _answer_judge():
    """Which model judges the offline answers: the contextual one, or "static" with the reason."""
    from llmgateway import contextual

    judge = contextual.state()
    return judge["judge"] if "reason" not in judge else f"{judge['judge']} ({judge['reason']})"


@never_cache
def health(request):
    """Whether this web process can serve: 503 while the database does not answer, else 200.

    Every part is named with its state, and `failed` lists those that do not
    answer. The cache (Redis) failing leaves this 200 with `status: degraded`:
    pages, the API and /v1/ go on without it (corporate/redis_circuit.py), and
    a load balancer that took every web process out of rotation at once for
    it would turn a degraded service into an outage. For the same reason a
    stale or missing task worker does not make this 503: uploads wait in
    `queued` until a worker is back. Monitoring alerts on `status`, `failed`
    and `worker.state`.
    `search` says whether search is hybrid (words and meaning, with the vector
    backend) or lexical only, with a warning naming why (e.g. no pgvector), and
    which model judges the offline answers (`answer_judge`).
    """
    checks = {"database": _check_database, "cache": _check_cache}
    body = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # any failure of a backing service is reported, not raised
            log.warning("health: %s failed: %s", name, exc.__class__.__name__)
            body[name] = "unavailable"
        else:
            body[name] = "ok"
    try:
        body["worker"] = _check_workers()
    except Exception as exc:  # the heartbeat store failed: nothing is known about the workers
        log.warning("health: worker heartbeat unreadable: %s", exc.__class__.__name__)
        body["worker"] = {"state": "unknown"}
    if body["worker"]["state"] == "never" and body["cache"] != "ok":
        body["worker"] = {"state": "unknown"}  # with Redis down, a missing heartbeat says nothing
    if body["database"] == "ok":
        body["search"] = _search_state()
    failed = [name for name in checks if body[name] != "ok"]
    body["status"] = "ok" if not failed else "degraded"
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if "database" in failed else 200)


# Seconds a client is asked to wait (Retry-After) while the database does not answer.
DATABASE_RETRY_AFTER = 10
DATABASE_UNAVAILABLE_MESSAGE = (
    "The service is briefly unavailable because its database is not answering. Please try again in a moment."
)


def database_unavailable(request, exception=None):
    """503 with Retry-After while the database is down or its connections are all busy.

    In the caller's shape (corporate.errors); the page is rendered without
    the request, whose session and user would need the very database that failed.
    """
    response = error_response(
        request, 503, "Temporarily unavailable", DATABASE_UNAVAILABLE_MESSAGE, "service_unavailable"
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    response["Cache-Control"] = "no-store"
    return response


def csrf_failure(request, reason=""):
    return error_response(
        request,
        403,
        "This form has expired",
        "The page was open too long or your session changed. Go back, reload the page and try again.",
        "csrf_failed",
        detail=f"CSRF check failed: {reason}" if reason else "CSRF check failed.",
    )


def bad_request(request, exception=None):
    # Django's body limits (raised while it reads the body) say which limit; other refusals stay general.
    if isinstance(exception, BODY_LIMIT_ERRORS):
        status, message, code = body_limit(exception)
        return error_response(request, status, "Too large" if status == 413 else "Bad request", message, code)
    if isinstance(exception, DisallowedHost):
        return error_response(request, 400, "Bad request", "This site does not answer to that host name.", "bad_host")
    return error_response(request, 400, "Bad request", "The request could not be understood.", "bad_request")


def permission_denied(request, exception=None):
    # The permission module's messages say what role is needed; show them.
    message = str(exception) if exception and str(exception) else "You do not have permission to do that."
    return error_response(request, 403, "Not allowed", message, "permission_denied")


# What an OpenAI client that calls an endpoint the gateway does not serve is told.
OPENAI_ENDPOINTS = (
    "POST /v1/chat/completions, POST /v1/responses, POST /v1/completions, POST /v1/embeddings, GET /v1/models "
    "and GET /v1/models/{model}"
)


def page_not_found(request, exception=None):
    if style_for(request) == OPENAI:
        # An OpenAI client calling an endpoint the gateway does not serve (/v1/images, /v1/audio...).
        detail = f"Invalid URL ({request.method} {request.path}): this gateway serves {OPENAI_ENDPOINTS}."
        return error_response(request, 404, "Page not found", detail, "not_found")
    return error_response(
        request,
        404,
        "Page not found",
        "There is nothing here, or you do not have access to it.",
        "not_found",
        detail="Not found.",
    )


def server_error(request):
    # The page is rendered without context processors: the request may be half-built.
    return error_response(
        request,
        500,
        "Something went wrong",
        "The error has been logged. Please try again in a moment.",
        "server_error",
    )
