"""The search page's lead and deal rows, built like crm's (crm/search_rows.py)."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from crm.money import money_html
from crm.search_rows import RowPage, join


def stage_badge(record) -> SafeString:
    return format_html(
        '<span class="badge bg-{}-lt text-nowrap">{}</span>',
        record.stage.color or "blue",
        record.stage.display_name,
    )


def lead_row(hit, page: RowPage) -> SafeString:
    record, hidden = hit.record, page.hidden("lead")
    owner = record.owner if record.owner_id else None
    items = [
        format_html(
            "<span>{}{}</span>",
            page.user_icon,
            owner
            or format_html('<span class="badge bg-secondary-lt">{}</span>', gettext("Unassigned")),
        )
    ]
    if record.phone and "phone" not in hidden:
        items.append(page.phone_item(record.phone))
    if record.email and "email" not in hidden:
        items.append(page.email_item(record.email))
    return format_html(
        '<div class="list-group-item app-search-hit" data-testid="search-hit"><div class="d-flex'
        ' align-items-start gap-2"><div class="min-w-0 flex-fill"><div class="fw-medium'
        ' text-truncate">{}</div><div class="small text-secondary d-flex flex-wrap column-gap-3'
        ' row-gap-1 mt-1">{}</div></div>{}</div></div>',
        page.title(hit, record.display_name),
        join(items),
        stage_badge(record),
    )


def deal_row(hit, page: RowPage) -> SafeString:
    record = hit.record
    amount = ""
    if "amount" not in page.hidden("deal"):
        amount = format_html('<span class="text-nowrap">{}</span>', money_html(record.amount))
    return format_html(
        '<div class="list-group-item app-search-hit" data-testid="search-hit"><div class="d-flex'
        ' align-items-start gap-2"><div class="min-w-0 flex-fill"><div class="fw-medium'
        ' text-truncate">{}</div><div class="small text-truncate mt-1">{}{}</div><div'
        ' class="small text-secondary d-flex flex-wrap column-gap-3 row-gap-1 mt-1"><span>{}{}'
        "</span>{}</div></div>{}</div></div>",
        page.title(hit, record.title),
        page.building_icon,
        page.parent(hit, record.customer.name),
        page.user_icon,
        record.owner,
        amount,
        stage_badge(record),
    )
