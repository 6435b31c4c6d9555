"""Whether the site's mail reaches anyone.

With no mail server configured (`EMAIL_HOST` unset: mail goes to the
console; or any backend that keeps mail on this machine), the pages show
what the mail would have carried, e.g. an invitation's link for an admin to
pass on.
"""

from django.conf import settings

# Backends that keep mail on this machine: the console, a file, memory, nowhere.
UNDELIVERED_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
}


def delivers_mail():
    """True when a mail server is configured, so mail leaves this machine."""
    return settings.EMAIL_BACKEND not in UNDELIVERED_BACKENDS


def site_url(request=None):
    """The site's public address for links: SITE_URL, else the address the request came to."""
    if settings.SITE_URL or request is None:
        return settings.SITE_URL or "http://127.0.0.1:8000"
    return request.build_absolute_uri("/").rstrip("/")
