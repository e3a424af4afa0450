"""A board card's HTML, built in Python.

A manager's board shows ~160 cards. Through a template each took ~0.5 ms (two
`blocktranslate`, four icons, ~25 variables, an include): about half of the page's
time. Here what every card of a board shares (labels, icons, URLs, the CSRF field) is
made once per board by `CardMaker`, and a card costs a few `format_html` calls. The page,
a column's "more" and a move's answer all render cards with it, so they cannot differ.
"""

from __future__ import annotations

from django.template.backends.utils import csrf_input
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

from crm.html import escape, format_html
from crm.templatetags.crm_ui import day, icon_ref, phone


class CardMaker:
    """Renders the cards of one board for one request."""

    def __init__(
        self,
        request,
        *,
        record_type: str,
        is_deal: bool,
        show_amount: bool,
        show_phone: bool,
        detail_url: tuple[str, str] | None,
        move_url: str,
    ):
        self.record_type = record_type
        self.is_deal, self.show_amount, self.show_phone = is_deal, show_amount, show_phone
        self.detail_url = detail_url
        move_to = gettext("Move to…")
        # Built once: the parts every card of the board repeats.
        self.menu_start = format_html(
            '<div class="dropdown app-card-menu"><button type="button" class="btn'
            ' btn-ghost-secondary btn-icon btn-sm" data-bs-toggle="dropdown"'
            ' aria-expanded="false" aria-label="{}" title="{}" data-testid="card-menu">{}'
            '</button><form class="dropdown-menu dropdown-menu-end" method="post" action="{}"'
            " data-move-form>{}",
            move_to,
            move_to,
            icon_ref("dots-vertical"),
            move_url,
            csrf_input(request),
        )
        self.menu_header = format_html('<h6 class="dropdown-header">{}</h6>', move_to)
        self.owner_icon = icon_ref("user", "icon-sm")
        self.closed_icon = icon_ref("calendar", "icon-sm")
        self.days_icon = icon_ref("clock", "icon-sm")
        self.overdue = format_html(
            "{}{}", icon_ref("alert-triangle", "icon-sm"), gettext("Overdue")
        )
        self.unassigned = escape(gettext("Unassigned"))

    def render(self, card) -> SafeString:
        """One card: `card` is a decorated record (BoardQuery's columns, Board.decorate).

        Put together with f-strings: the parts made once are safe HTML already, ids are
        integers, and every text from the record goes through `escape` (format_html's
        checks on each of ~20 arguments were a third of a card's cost)."""
        classes = "card card-sm app-card"
        if card.movable:
            classes += " app-card-movable"
        overdue = card.over_time_limit
        if overdue:
            classes += " app-card-overdue"
        pk, stage_id = int(card.pk), int(card.stage_id)
        menu = self._menu(card, pk, stage_id) if card.movable else ""
        amount = (
            f'<span class="app-card-amount" data-testid="card-amount">{card.amount_display}</span>'
            if self.show_amount
            else ""
        )
        owner = escape(card.owner.get_full_name()) if card.owner_id else self.unassigned
        return mark_safe(  # noqa: S308 - see the docstring
            f'<article class="{classes}" id="card-{self.record_type}-{pk}" data-record="{pk}"'
            f' data-stage="{stage_id}" data-testid="card"><div class="card-body"><div'
            ' class="d-flex align-items-start gap-1"><div class="min-w-0 flex-fill">'
            f"{self._title(card, pk)}{self._subtitle(card)}</div>{menu}</div>"
            f'<div class="app-card-meta">{amount}<span class="app-card-owner text-truncate">'
            f"{self.owner_icon}{owner}</span></div>"
            f'<div class="app-card-meta">{self._time(card, overdue)}</div></div></article>'
        )

    def _title(self, card, pk: int) -> str:
        text = escape(card.title if self.is_deal else card.display_name)
        if self.detail_url:
            before, after = self.detail_url
            return (
                f'<a href="{before}{pk}{after}" class="app-card-title"'
                f' data-testid="card-title">{text}</a>'
            )
        return f'<span class="app-card-title" data-testid="card-title">{text}</span>'

    def _subtitle(self, card) -> str:
        if self.is_deal:
            text = card.customer.name
        else:
            number = phone(card.phone) if self.show_phone and card.phone else ""
            text = " · ".join(part for part in (card.title, number) if part)
            if not text:
                return ""
        return f'<div class="app-card-sub text-truncate">{escape(text)}</div>'

    def _menu(self, card, pk: int, stage_id: int) -> str:
        return (
            f'{self.menu_start}<input type="hidden" name="record" value="{pk}"><input'
            f' type="hidden" name="expected_stage" value="{stage_id}">{self.menu_header}'
            f"{card.move_menu}</form></div>"
        )

    def _time(self, card, overdue: bool) -> str:
        if card.closed_at:
            closed = escape(gettext("Closed %(day)s") % {"day": day(card.closed_at)})
            return f'<span class="text-secondary">{self.closed_icon}{closed}</span>'
        days = card.days_in_stage
        in_stage = escape(
            ngettext("%(days)s day in stage", "%(days)s days in stage", days) % {"days": days}
        )
        html = (
            '<span class="text-secondary app-card-days" data-testid="card-days">'
            f"{self.days_icon}{in_stage}</span>"
        )
        if overdue:
            limit = card.stage.time_limit_days
            title = escape(
                ngettext(
                    "Over this stage's limit of %(days)s day",
                    "Over this stage's limit of %(days)s days",
                    limit,
                )
                % {"days": limit}
            )
            html += (
                '<span class="badge bg-red text-red-fg ms-auto" data-testid="overdue"'
                f' title="{title}">{self.overdue}</span>'
            )
        return html
