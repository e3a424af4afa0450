"""Small template helpers for the UI: inline icons."""

import re
from datetime import datetime
from decimal import InvalidOperation
from functools import lru_cache

from django import template
from django.contrib.staticfiles import finders
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext

from accounts.phones import format_phone

from ..html import format_html
from ..money import format_money, money_html

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


@lru_cache(maxsize=128)
def _symbol(name: str) -> str:
    """The icon as a <symbol id="icon-NAME"> of a page's sprite."""
    svg = _svg(name)
    inner = svg[svg.index(">") + 1 : svg.rindex("</svg>")]
    return (
        f'<symbol id="icon-{name}" viewBox="0 0 24 24" fill="none" stroke="currentColor"'
        f' stroke-width="2" stroke-linecap="round" stroke-linejoin="round">{inner}</symbol>'
    )


@register.simple_tag
def icon_sprite(*names: str) -> str:
    """The icons a page repeats, once: {% icon_sprite "user" "clock" %}; each use is then
    {% icon_ref "user" %}, ~100 bytes instead of ~500 (a board shows 160 cards, 4 icons each)."""
    symbols = "".join(_symbol(name) for name in names)
    return mark_safe(f'<svg class="d-none" aria-hidden="true">{symbols}</svg>')  # noqa: S308


@register.simple_tag
def icon_ref(name: str, css: str = "") -> str:
    """A use of an icon of the page's sprite (icon_sprite)."""
    _svg(name)  # a name that is not vendored fails here as in {% icon %}
    return format_html(
        '<svg class="icon {}" aria-hidden="true" width="24" height="24">'
        '<use href="#icon-{}"></use></svg>',
        css,
        name,
    )


@register.filter
def money(value) -> str:
    """An amount as every page shows money: ¥1,234.50 (crm.money.format_money)."""
    try:
        return format_money(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)


@register.filter
def money_compact(value) -> str:
    """An amount as lists, cards and reports show it, short, with the exact amount in its
    title: <span title="¥936,000.00">¥93.6万</span> (crm.money.money_html)."""
    return money_html(value)


@register.filter
def phone(value: str) -> str:
    """A stored E.164 number as people read it: 138 0013 8000."""
    return _formatted_phone(value or "")


@register.filter
def day(value) -> str:
    """A datetime as its local date, 2026-11-23: what |date:"Y-m-d" prints, ~20x faster
    (it matters in lists: three dates a row, 100 rows)."""
    if not value:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
    return value.strftime("%Y-%m-%d")


def _local(value: datetime) -> datetime:
    return timezone.localtime(value) if timezone.is_aware(value) else value


@register.filter
def minute(value) -> str:
    """A datetime as its local date and time, 2026-11-23 14:05: what |date:"Y-m-d H:i"
    prints, without the format parser (timelines print two a row)."""
    if not isinstance(value, datetime):
        return ""
    value = _local(value)
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}"


@register.filter
def iso(value) -> str:
    """A datetime in local time as ISO 8601 (for <time datetime>): what |date:"c" prints."""
    return _local(value).isoformat() if isinstance(value, datetime) else ""


# Parsing a number costs ~50 µs; a list page shows up to 100 of the same few thousand.
@lru_cache(maxsize=8192)
def _formatted_phone(value: str) -> str:
    return format_phone(value)


@register.simple_tag(takes_context=True)
def sort_link(context, key: str) -> str:
    """The list URL sorted by `key`, toggling direction when it is already the sort."""
    current = context.get("sort", "")
    target = f"-{key}" if current == key else key
    base = context.get("query_without_sort", "")
    return "?" + (f"{base}&" if base else "") + f"sort={target}"


@register.simple_tag(takes_context=True)
def page_link(context, number: int) -> str:
    query = context.get("query", "")
    per_page = context["request"].GET.get("per_page")
    extra = f"&per_page={per_page}" if per_page else ""
    return "?" + (f"{query}&" if query else "") + f"page={number}{extra}"


@register.filter
def sort_state(sort: str, key: str) -> str:
    """'asc', 'desc' or '' for a column header."""
    if sort == key:
        return "asc"
    if sort == f"-{key}":
        return "desc"
    return ""


# Icons of the default follow-up kinds (activity_kind dictionary codes).
KIND_ICONS = {
    "call": "phone-call",
    "visit": "map-pin",
    "meeting": "users",
    "email": "mail",
    "wechat": "brand-wechat",
    "note": "notes",
}


@register.filter
def kind_icon(kind) -> str:
    """The icon name for an activity kind (a DictionaryItem or its code)."""
    code = getattr(kind, "code", kind) or ""
    return KIND_ICONS.get(code, "message-circle")


@register.simple_tag(takes_context=True)
def dashboard_panel(context, shown) -> str:
    """A panel of the home page (crm.dashboard_cards.ShownPanel): its template with its
    context, inside the page's (rendered apart, each ran every context processor again:
    the navigation's permission checks five times for a rep)."""
    template = context.template.engine.get_template(shown.panel.template)
    with context.push(shown.context):
        return template.render(context)


@register.simple_tag
def kind_buttons(field) -> str:
    """The follow-up kinds of a bound `kind` field (ActivityForm: its widget's choices
    carry each DictionaryItem) as icon buttons, a radio each; the chosen one checked,
    else the first. Through the template, iterating the field's subwidgets, six buttons
    cost ~2.5 ms of the customer page."""
    value = field.value()
    name = escape(field.html_name)
    buttons = []
    for index, (option, label) in enumerate(field.field.widget.choices):
        checked = (value is not None and str(option) == str(value)) or (not value and index == 0)
        buttons.append(
            format_html(
                '<label class="form-selectgroup-item"><input type="radio" name="{}" value="{}"'
                ' class="form-selectgroup-input"{}><span class="form-selectgroup-label">{}{}'
                "</span></label>",
                name,
                option,
                mark_safe(" checked") if checked else "",
                icon(kind_icon(getattr(option, "instance", option)), "me-1"),
                label,
            )
        )
    return mark_safe("".join(buttons))  # noqa: S308 - each from format_html


@register.simple_tag
def follow_up(when, with_time: bool = False) -> str:
    """A follow-up or due time: red on a past day, amber today ("今天 14:00"), grey later.
    A tag, not an include: lists render it on every row."""
    if not when:
        return mark_safe('<span class="text-secondary">—</span>')
    local = timezone.localtime(when) if timezone.is_aware(when) else when
    day, today = local.date(), timezone.localdate()
    if day < today:
        css = "text-danger fw-medium"
    elif day == today:
        css = "text-warning fw-medium"
    else:
        css = "text-secondary"
    if day == today:
        text = f"{gettext('Today')} {local:%H:%M}"
    else:
        text = day.isoformat() + (f" {local:%H:%M}" if with_time else "")
    title = f"{local:%Y-%m-%d %H:%M}"
    return format_html('<span class="{}" title="{}">{}</span>', css, title, text)
