"""Small pieces of sign-in shared by settings and views."""


def axes_username(request, credentials):
    """The account a sign-in attempt is for, as the lockout counts it: the email, trimmed and lowercased."""
    username = (credentials or {}).get("username") or ""
    if not username and request is not None:
        username = request.POST.get("username", "")
    return username.strip().lower()
