"""Rows of the lead and deal lists, built in Python like crm's (crm/views/rows.py): what
every row repeats is worked out once per page, a row is a few `format_html` calls."""

from __future__ import annotations

from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

from crm.html import format_html
from crm.templatetags.crm_ui import day, icon, phone
from crm.views.rows import custom_cells, select_cell

from ..models import LeadStatus


class StagedRows:
    """What lead and deal rows share: the checkbox, the stage badge, the days in stage."""

    list_name = ""

    def __init__(self, *, hidden: frozenset[str], bulk: bool, custom: bool):
        self.hidden, self.bulk, self.custom = hidden, bulk, custom
        self.list_url = reverse(self.list_name)
        self.select_label = gettext("Select")
        self.over_label = gettext("Over the stage's time limit")
        self.clock = icon("clock", "icon-sm me-1")

    def __call__(self, rows) -> list[SafeString]:
        return [self.row(record) for record in rows]

    def row(self, record) -> SafeString:
        raise NotImplementedError

    def checkbox(self, record, name: str) -> SafeString | str:
        return select_cell(record.pk, self.select_label, name) if self.bulk else ""

    def stage_badge(self, record) -> SafeString:
        return format_html(
            '<span class="badge bg-{}-lt text-nowrap" data-testid="stage-badge">{}</span>',
            record.stage.color or "blue",
            record.stage.display_name,
        )

    def days(self, record) -> str:
        days = record.days_in_stage
        return ngettext("%(days)s day", "%(days)s days", days) % {"days": days}

    def overdue_small(self, record) -> SafeString | str:
        """Under the stage on a phone: how long the record is past the stage's limit."""
        if not record.over_time_limit:
            return ""
        return format_html(
            '<div class="small text-danger fw-medium mt-1 text-nowrap d-md-none" title="{}">'
            "{}{}</div>",
            self.over_label,
            self.clock,
            self.days(record),
        )

    def in_stage(self, record) -> SafeString:
        if record.over_time_limit:
            return format_html(
                '<td class="d-none d-md-table-cell text-nowrap"><span class="text-danger'
                ' fw-medium" title="{}" data-testid="over-limit">{}{}</span></td>',
                self.over_label,
                self.clock,
                self.days(record),
            )
        return format_html(
            '<td class="d-none d-md-table-cell text-nowrap"><span class="text-secondary">{}'
            "</span></td>",
            self.days(record),
        )

    def cells(self, record) -> SafeString | str:
        return custom_cells(record) if self.custom else ""


class LeadRows(StagedRows):
    list_name = "leads:list"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pool = gettext("Unassigned")
        self.pool_badge = format_html('<span class="badge bg-secondary-lt">{}</span>', self.pool)

    def row(self, lead) -> SafeString:
        hidden = self.hidden
        name = lead.display_name
        notes = ""
        if lead.phone and "phone" not in hidden:
            notes += format_html('<span class="text-nowrap">{}</span>', phone(lead.phone))
        if lead.status != LeadStatus.OPEN:
            notes += format_html(
                '<span class="badge bg-{}-lt">{}</span>',
                "green" if lead.status == LeadStatus.CONVERTED else "secondary",
                lead.get_status_display(),
            )
        owner = lead.owner if lead.owner_id else None
        notes += format_html('<span class="d-md-none">{}</span>', owner or self.pool)
        source = ""
        if "source" not in hidden:
            source = format_html(
                '<td class="d-none d-lg-table-cell">{}</td>', lead.source if lead.source_id else "—"
            )
        return format_html(
            '<tr data-testid="lead-row">{}<td class="app-cell-sub"><a href="{}{}/"'
            ' class="fw-medium">{}</a><div class="small text-secondary d-flex flex-wrap'
            ' column-gap-2 mt-1">{}</div></td><td>{}{}</td>'
            '<td class="d-none d-md-table-cell">{}</td>{}{}{}'
            '<td class="d-none d-lg-table-cell text-secondary text-nowrap">{}</td></tr>',
            self.checkbox(lead, name),
            self.list_url,
            lead.pk,
            name,
            mark_safe(notes),  # noqa: S308 - parts from format_html
            self.stage_badge(lead),
            self.overdue_small(lead),
            owner or self.pool_badge,
            source,
            self.cells(lead),
            self.in_stage(lead),
            day(lead.created_at),
        )


class DealRows(StagedRows):
    list_name = "deals:list"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.customers_url = reverse("customers:list")
        self.building = icon("building", "icon-sm me-1")

    def row(self, deal) -> SafeString:
        hidden = self.hidden
        show_amount = "amount" not in hidden
        amount_small = amounts = close = ""
        if show_amount:
            amount_small = format_html(
                '<div class="small text-nowrap mt-1 d-sm-none">{}</div>', deal.amount_text
            )
            amounts = format_html(
                '<td class="text-end text-nowrap d-none d-sm-table-cell">{}</td>'
                '<td class="text-end text-nowrap text-secondary d-none d-lg-table-cell"'
                ' title="{}%">{}</td>',
                deal.amount_text,
                deal.probability,
                deal.weighted_text,
            )
        if "expected_close_date" not in hidden:
            close = format_html(
                '<td class="d-none d-lg-table-cell text-secondary text-nowrap">{}</td>',
                day(deal.expected_close_date) or "—",
            )
        return format_html(
            '<tr data-testid="deal-row">{}<td class="app-cell-sub"><a href="{}{}/"'
            ' class="fw-medium">{}</a><div class="small text-secondary text-truncate mt-1">{}'
            '<a href="{}{}/" class="text-reset">{}</a><span class="d-md-none"> · {}</span>'
            "</div></td><td>{}{}{}</td>{}"
            '<td class="d-none d-md-table-cell">{}</td>{}{}{}</tr>',
            self.checkbox(deal, deal.title),
            self.list_url,
            deal.pk,
            deal.title,
            self.building,
            self.customers_url,
            deal.customer_id,
            deal.customer.name,
            deal.owner,
            self.stage_badge(deal),
            amount_small,
            self.overdue_small(deal),
            amounts,
            deal.owner,
            close,
            self.cells(deal),
            self.in_stage(deal),
        )
