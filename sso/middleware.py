from urllib.parse import urlsplit

SESSION_FORM_ACTION = "sso_form_action"


def origin(url):
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in {"http", "https"} and parts.netloc else None


class ProviderFormActionMiddleware:
    """Lets the sign-in and sign-out forms lead to the identity provider under the CSP's form-action.

    Browsers apply form-action to the redirects after a form is sent, so the
    sign-in page (request.sso_form_action, set by the view) and, in an SSO
    session, every page with the sign-out button (the provider's origin kept
    in the session at sign-in) name the provider's origins. No query.
    Sits after django-csp's middleware in MIDDLEWARE, so it runs first on the response.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        origins = list(getattr(request, "sso_form_action", None) or [])
        session = getattr(request, "session", None)
        if session is not None and not origins:
            origins = list(session.get(SESSION_FORM_ACTION) or [])
        if origins:
            update = dict(getattr(response, "_csp_update", None) or {})
            update["form-action"] = list(update.get("form-action", [])) + origins
            response._csp_update = update
        return response
