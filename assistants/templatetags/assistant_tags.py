from django import template

from assistants.rendering import render_answer

register = template.Library()


@register.filter
def answer_html(text):
    """An answer's Markdown as sanitized HTML."""
    return render_answer(text)
