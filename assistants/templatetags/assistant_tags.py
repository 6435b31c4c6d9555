from django import template
from django.utils import timezone

from assistants.rendering import citation_links, render_answer, render_with_sources

register = template.Library()


@register.filter
def answer_html(text):
    """An answer's Markdown as sanitized HTML."""
    return render_answer(text)


@register.simple_tag
def answer_with_sources(message, workspace):
    """An answer's Markdown as sanitized HTML, its [n] markers linked to the passages they cite.

    Pages that show many answers set `message.html` beforehand (rendering.prerender_answers: cached).
    """
    html = getattr(message, "html", None)
    if html is not None:
        return html
    return render_with_sources(message.content, citation_links(message, workspace.slug))


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
