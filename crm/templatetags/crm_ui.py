"""Small template helpers for the UI: inline icons."""

import re
from functools import lru_cache

from django import template
from django.contrib.staticfiles import finders
from django.utils.html import escape
from django.utils.safestring import mark_safe

from accounts.phones import format_phone

register = template.Library()


@lru_cache(maxsize=128)
def _svg(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"bad icon name {name!r}")
    path = finders.find(f"vendor/tabler-icons/{name}.svg")
    if path is None:
        raise ValueError(f"icon {name!r} is not vendored (see static/vendor/README.md)")
    with open(path, encoding="utf-8") as fh:
        svg = " ".join(fh.read().split())
    return re.sub(r'class="[^"]*"', 'class="icon {css}" aria-hidden="true"', svg, count=1)


@register.simple_tag
def icon(name: str, css: str = "") -> str:
    """An outline Tabler icon inlined as SVG: {% icon "home" "icon-lg" %}."""
    return mark_safe(_svg(name).replace("{css}", escape(css)))  # noqa: S308 - our own file


@register.filter
def phone(value: str) -> str:
    """A stored E.164 number as people read it: 138 0013 8000."""
    return format_phone(value)
