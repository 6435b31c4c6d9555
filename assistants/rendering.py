"""Answers as safe HTML: Markdown, then a strict sanitizer.

No script, no event handlers, no images at all (an image URL could carry a
conversation away), and links only to this site or to hosts listed in
ANSWER_LINK_HOSTS; any other link is kept as plain text.
"""

from urllib.parse import unquote, urlsplit

import markdown
import nh3
from django.conf import settings
from django.utils.safestring import mark_safe

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "b", "i", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a", "hr", "del",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


def _link_allowed(href):
    # Browsers read "/\\host" (and "/%5Chost", tabs, newlines) as "//host": anything odd is refused.
    decoded = unquote(href)
    if any(ch == "\\" or ch.isspace() or ord(ch) < 32 for ch in decoded):
        return False
    parts = urlsplit(href)
    if not parts.scheme and not parts.netloc:
        return decoded.startswith(("/", "#")) and not decoded.startswith("//")
    return parts.scheme in {"http", "https"} and (parts.hostname or "") in settings.ANSWER_LINK_HOSTS


def _filter(tag, attribute, value):
    if tag == "a" and attribute == "href":
        return value if _link_allowed(value) else None
    return value


def render_answer(text):
    html = markdown.markdown(text or "", extensions=["extra", "sane_lists"], output_format="html")
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=_filter,
        url_schemes={"http", "https"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(clean)  # noqa: S308 - sanitized by nh3 just above
