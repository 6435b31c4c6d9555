"""Answers as safe HTML: Markdown, then a strict sanitizer.

No script, no event handlers, no images at all (an image URL could carry a
conversation away), and links only to this site or to hosts listed in
ANSWER_LINK_HOSTS; any other link is kept as plain text.
"""

import hashlib
import json
import logging
from urllib.parse import unquote, urlsplit

import markdown
import nh3
from django.conf import settings
from django.utils.safestring import mark_safe

log = logging.getLogger(__name__)

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


# Rendered answers are kept in the cache under a digest of what they are made from (the Markdown,
# the links of their [n] markers and the link rules), so an entry can never be stale: an edited
# answer or a changed setting is another key. A long conversation renders once, then reads.
RENDERED_SECONDS = 7 * 24 * 3600
RENDERED_VERSION = 1


def _rendered_key(text, links):
    hosts = ",".join(sorted(settings.ANSWER_LINK_HOSTS))
    material = json.dumps([RENDERED_VERSION, text or "", sorted(links.items()), hosts], ensure_ascii=False)
    return "answer-html:" + hashlib.sha256(material.encode()).hexdigest()[:40]


def citation_links(message, workspace_slug):
    """{n: url} of the passages an answer cites, for its [n] markers."""
    from django.urls import reverse

    return {
        c["n"]: reverse("assistants:citation", args=[workspace_slug, message.pk, c["n"]])
        for c in message.citations or []
        if isinstance(c, dict) and isinstance(c.get("n"), int)
    }


def render_with_sources(text, links):
    from assistants.citing import link_markers

    return link_markers(render_answer(text), links)


def prerender_answers(messages, workspace_slug):
    """Set `.html` on each answer of `messages`: read from the cache in one call, rendered when missing."""
    from django.core.cache import cache

    answers = [m for m in messages if m.role == "assistant"]
    if not answers:
        return
    wanted = {}
    for message in answers:
        links = citation_links(message, workspace_slug)
        wanted[message.pk] = (_rendered_key(message.content, links), links)
    try:
        found = cache.get_many([key for key, _ in wanted.values()])
    except Exception:  # a cache outage costs rendering time, never the page
        log.warning("rendered answers: cache unavailable", exc_info=True)
        found = {}
    fresh = {}
    for message in answers:
        key, links = wanted[message.pk]
        html = found.get(key)
        if html is None:
            html = fresh[key] = str(render_with_sources(message.content, links))
        message.html = mark_safe(html)  # noqa: S308 - sanitized by render_answer before it was stored
    if fresh:
        try:
            cache.set_many(fresh, RENDERED_SECONDS)
        except Exception:
            log.warning("rendered answers: cache unavailable", exc_info=True)
