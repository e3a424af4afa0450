"""The search page's lead and deal rows, built like crm's (crm/search_rows.py)."""

from __future__ import annotations

from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from crm.html import conditional_escape as _e
from crm.money import money_html
from crm.search_rows import RowPage


def stage_badge(record) -> str:
    stage = record.stage
    return (
        f'<span class="badge bg-{_e(stage.color or "blue")}-lt text-nowrap">'
        f"{_e(stage.display_name)}</span>"
    )


def lead_row(hit, page: RowPage) -> SafeString:
    record, hidden = hit.record, page.hidden("lead")
    owner = record.owner if record.owner_id else None
    if owner:
        owner = _e(owner)
    else:
        owner = f'<span class="badge bg-secondary-lt">{_e(gettext("Unassigned"))}</span>'
    items = f"<span>{page.user_icon}{owner}</span>"
    if record.phone and "phone" not in hidden:
        items += page.phone_item(record.phone)
    if record.email and "email" not in hidden:
        items += page.email_item(record.email)
    return mark_safe(  # noqa: S308 - every value is escaped
        '<div class="list-group-item app-search-hit" data-testid="search-hit"><div class="d-flex'
        ' align-items-start gap-2"><div class="min-w-0 flex-fill"><div class="fw-medium'
        f' text-truncate">{page.title(hit, record.display_name)}</div><div class="small'
        ' text-secondary d-flex flex-wrap column-gap-3 row-gap-1 mt-1">'
        f"{items}</div></div>{stage_badge(record)}</div></div>"
    )


def deal_row(hit, page: RowPage) -> SafeString:
    record = hit.record
    amount = ""
    if "amount" not in page.hidden("deal"):
        amount = f'<span class="text-nowrap">{_e(money_html(record.amount))}</span>'
    return mark_safe(  # noqa: S308 - every value is escaped
        '<div class="list-group-item app-search-hit" data-testid="search-hit"><div class="d-flex'
        ' align-items-start gap-2"><div class="min-w-0 flex-fill"><div class="fw-medium'
        f' text-truncate">{page.title(hit, record.title)}</div><div class="small text-truncate'
        f' mt-1">{page.building_icon}{page.parent(hit, record.customer.name)}</div><div'
        ' class="small text-secondary d-flex flex-wrap column-gap-3 row-gap-1 mt-1"><span>'
        f"{page.user_icon}{_e(record.owner)}</span>{amount}</div></div>{stage_badge(record)}"
        "</div></div>"
    )
