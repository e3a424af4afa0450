"""Template helpers of the search page."""

import re

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def highlight(text, query) -> str:
    """`text` escaped, with case-insensitive occurrences of `query` in <mark>."""
    text, query = str(text or ""), str(query or "").strip()
    if not query:
        return escape(text)
    parts = re.split(f"({re.escape(query)})", text, flags=re.IGNORECASE)
    html = "".join(
        f"<mark>{escape(part)}</mark>" if index % 2 else escape(part)
        for index, part in enumerate(parts)
    )
    return mark_safe(html)  # noqa: S308 - every piece is escaped above


@register.filter
def detail_url(pk, url_name: str) -> str:
    """The URL named `url_name` for `pk`, or "" while that page does not exist."""
    if pk in (None, ""):
        return ""
    try:
        return reverse(url_name, args=[pk])
    except NoReverseMatch:
        return ""
