"""Where a form sends the user back to: an address they gave (`next`), only when it is on this site."""

from django.http import HttpResponseRedirect
from django.shortcuts import resolve_url
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request, url, default="dashboard"):
    """`url` when it is on this site (its host and scheme), else `default` (a view name, an object or a URL)."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return resolve_url(default)


def redirect_next(request, url, default="dashboard"):
    """A redirect to `safe_next`, always to it as an address: `redirect()` would look a plain word given as
    `next` ("-1") up as a view name, and fail."""
    return HttpResponseRedirect(safe_next(request, url, default))
