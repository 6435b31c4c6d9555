from django import template
from django.urls import reverse

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
