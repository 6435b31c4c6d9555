from django import template
from django.urls import reverse
from django.utils import timezone

from assistants.citing import link_markers
from assistants.rendering import render_answer

register = template.Library()


@register.filter
def answer_html(text):
    """An answer's Markdown as sanitized HTML."""
    return render_answer(text)


@register.simple_tag
def answer_with_sources(message, workspace):
    """An answer's Markdown as sanitized HTML, its [n] markers linked to the passages they cite."""
    links = {
        c["n"]: reverse("assistants:citation", args=[workspace.slug, message.pk, c["n"]])
        for c in message.citations or []
        if isinstance(c.get("n"), int)
    }
    return link_markers(render_answer(message.content), links)


@register.filter
def when(value):
    """A short date for lists: the time today, the day this year, else the full date."""
    if not value:
        return ""
    local, now = timezone.localtime(value), timezone.localtime()
    if local.date() == now.date():
        return f"{local:%H:%M}"
    if local.year == now.year:
        return f"{local.day} {local:%b}"
    return f"{local.day} {local:%b %Y}"
