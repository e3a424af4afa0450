"""Rows of the busiest lists, built in Python.

A list of 100 customers spent ~20 ms in its row template (the Django template language
costs a few microseconds a node, and a row has ~40). As Django's admin does for its
change lists, the rows are put together with `format_html` here: what every row repeats
(labels, URLs, which columns the user sees) is worked out once per page, a row costs a
few calls, and escaping is the same as in a template. The page around the rows, the
table's head and the empty state stay templates.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from crm.templatetags.crm_ui import day, follow_up, phone

_EMPTY = mark_safe("—")


def custom_cells(record) -> SafeString:
    """The list's custom-field columns (filled by the view's fill_custom_cells)."""
    return format_html_join(
        "",
        '<td class="d-none d-lg-table-cell text-truncate app-cell-custom">{}</td>',
        ((cell or _EMPTY,) for cell in getattr(record, "custom_cells", ())),
    )


class CustomerRows:
    """The customer list's rows for one page and one user."""

    def __init__(self, *, hidden: frozenset[str], bulk: bool, custom: bool):
        self.hidden, self.bulk, self.custom = hidden, bulk, custom
        self.list_url = reverse("customers:list")
        self.select_label = gettext("Select")
        self.pool = gettext("Public pool")
        self.pool_badge = format_html('<span class="badge bg-secondary-lt">{}</span>', self.pool)

    def __call__(self, rows) -> list[SafeString]:
        return [self.row(customer) for customer in rows]

    def row(self, customer) -> SafeString:
        hidden = self.hidden
        cells = []
        if self.bulk:
            cells.append(
                format_html(
                    '<td><input type="checkbox" name="selected" value="{}" class="form-check-input'
                    ' m-0 align-middle" aria-label="{} {}"></td>',
                    customer.pk,
                    self.select_label,
                    customer.name,
                )
            )
        notes = []
        if customer.type_id and "type" not in hidden:
            notes.append(format_html("<span>{}</span>", customer.type))
        if "tags" not in hidden:
            notes.extend(
                format_html('<span class="badge bg-{}-lt">{}</span>', tag.color or "blue", tag.name)
                for tag in customer.tags.all()
            )
        owner = customer.owner if customer.owner_id else None
        notes.append(format_html('<span class="d-md-none">{}</span>', owner or self.pool))
        cells.append(
            format_html(
                '<td><a href="{}{}/" class="fw-medium">{}</a><div class="small text-secondary'
                ' d-flex flex-wrap gap-1 mt-1">{}</div></td>',
                self.list_url,
                customer.pk,
                customer.name,
                mark_safe("".join(notes)),  # noqa: S308 - each part from format_html
            )
        )
        if "level" not in hidden:
            level = customer.level if customer.level_id else None
            cells.append(
                format_html(
                    '<td class="d-none d-lg-table-cell">{}</td>',
                    format_html(
                        '<span class="badge bg-{}-lt">{}</span>', level.color or "secondary", level
                    )
                    if level
                    else "",
                )
            )
        cells.append(
            format_html(
                '<td class="d-none d-md-table-cell">{}</td>', owner if owner else self.pool_badge
            )
        )
        if "phone" not in hidden:
            cells.append(
                format_html(
                    '<td class="d-none d-xl-table-cell text-nowrap">{}</td>', phone(customer.phone)
                )
            )
        if self.custom:
            cells.append(custom_cells(customer))
        cells.append(
            format_html(
                '<td class="d-none d-md-table-cell text-secondary text-nowrap">{}</td>'
                '<td class="text-nowrap">{}</td>'
                '<td class="d-none d-lg-table-cell text-secondary text-nowrap">{}</td>',
                day(customer.last_activity_at) or _EMPTY,
                follow_up(customer.next_follow_up_at),
                day(customer.created_at),
            )
        )
        return mark_safe(f"<tr>{''.join(cells)}</tr>")  # noqa: S308 - parts from format_html
