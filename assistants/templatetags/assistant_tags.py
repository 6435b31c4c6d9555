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


@register.simple_tag
def preview_with_sources(html, citations):
    """A preview's answer (sanitized HTML, never saved) with its [n] markers linked to the passages listed under it."""
    from assistants.citing import link_markers

    links = {c["n"]: c["url"] for c in citations or [] if isinstance(c.get("n"), int) and c.get("url")}
    return link_markers(html, links)


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
