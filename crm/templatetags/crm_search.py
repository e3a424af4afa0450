"""Template helpers of the search page."""

import re

from django import template
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
