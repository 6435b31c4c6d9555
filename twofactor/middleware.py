from django.http import JsonResponse
from django.shortcuts import redirect

from twofactor import flow

# Paths a person who must still enrol can reach: the enrolment itself, signing out, files, health.
OPEN_PREFIXES = ("/accounts/2fa/", "/accounts/logout/", "/accounts/login/", "/static/", "/health", "/v1/")


class RequireTwoFactorMiddleware:
    """A signed-in session that must enrol a second factor reaches only the enrolment page.

    The session is marked at password sign-in (twofactor.flow), so this reads
    the session only: no query on any page. Requests with an API token or a
    workspace API key carry no session and are not affected.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and session.get(flow.MUST_ENROL) and not request.path.startswith(OPEN_PREFIXES):
            if request.path.startswith("/api/"):
                detail = "Set up two-factor sign-in first, at /accounts/2fa/setup/."
                return JsonResponse({"detail": detail}, status=403)
            return redirect(flow.setup_url(request.get_full_path()))
        return self.get_response(request)
