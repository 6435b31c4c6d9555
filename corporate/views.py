import logging

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from corporate.auth import cooloff_words, password_reset_limit
from corporate.dashboard import panels_for
from corporate.forms import SignInForm
from corporate.navigation import areas_for

log = logging.getLogger(__name__)


class SignInView(auth_views.LoginView):
    """Django's sign-in page; a signed-in user is sent on, never into a redirect loop."""

    authentication_form = SignInForm
    redirect_authenticated_user = True

    def get_redirect_url(self):
        url = super().get_redirect_url()
        # ?next= pointing back at the sign-in page would loop (Django raises); go to the dashboard.
        return "" if url and url.split("?")[0] == self.request.path else url


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
        return super().form_valid(form)


@login_required
def dashboard(request):
    """The areas of the site, and the panels the apps register (corporate.dashboard)."""
    return render(request, "corporate/dashboard.html", {"areas": areas_for(request), "panels": panels_for(request)})


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_cache():
    client_getter = getattr(cache, "client", None)
    if client_getter is not None and hasattr(client_getter, "get_client"):
        # django-redis swallows errors (IGNORE_EXCEPTIONS); ask Redis directly.
        client_getter.get_client(write=True).ping()
        return
    cache.set("health:probe", "1", 5)
    if cache.get("health:probe") != "1":
        raise RuntimeError("cache did not return what was stored")


@never_cache
def health(request):
    """Liveness of the parts every request needs: 200 when all answer, 503 naming the failing part."""
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
    failed = [name for name, state in body.items() if state != "ok"]
    body["status"] = "ok" if not failed else "degraded"
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


def csrf_failure(request, reason=""):
    return render(
        request,
        "errors/error.html",
        {
            "title": "This form has expired",
            "message": "The page was open too long or your session changed. Go back, reload the page and try again.",
        },
        status=403,
    )


def error_page(status, title, message):
    def view(request, exception=None):
        return render(
            request, "errors/error.html", {"title": title, "message": message, "status": status}, status=status
        )

    return view


bad_request = error_page(400, "Bad request", "The request could not be understood.")


def permission_denied(request, exception=None):
    # The permission module's messages say what role is needed; show them.
    message = str(exception) if exception and str(exception) else "You do not have permission to do that."
    return render(request, "errors/error.html", {"title": "Not allowed", "message": message, "status": 403}, status=403)


_page_not_found = error_page(404, "Page not found", "There is nothing here, or you do not have access to it.")


def page_not_found(request, exception=None):
    # API clients get JSON: OpenAI's error shape under /v1/, DRF's under /api/.
    if request.path.startswith("/v1/"):
        error = {"message": "Unknown API path.", "type": "invalid_request_error", "param": None, "code": "not_found"}
        return JsonResponse({"error": error}, status=404)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return _page_not_found(request, exception)


def server_error(request):
    # No template context processors: the request may be half-built.
    from django.http import HttpResponseServerError
    from django.template import loader

    template = loader.get_template("errors/500.html")
    return HttpResponseServerError(template.render({"SITE_NAME": settings.SITE_NAME}))
