"""A board card's HTML, built in Python.

A manager's board shows ~160 cards. Through a template each took ~0.5 ms (two
`blocktranslate`, four icons, ~25 variables, an include): about half of the page's
time. Here what every card of a board shares (labels, icons, URLs, the CSRF field) is
made once per board by `CardMaker`, and a card costs a few `format_html` calls. The page,
a column's "more" and a move's answer all render cards with it, so they cannot differ.
"""

from __future__ import annotations

from django.template.backends.utils import csrf_input
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

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
        self.unassigned = gettext("Unassigned")

    def render(self, card) -> SafeString:
        """One card: `card` is a decorated record (BoardQuery's columns, Board.decorate)."""
        classes = "card card-sm app-card"
        if card.movable:
            classes += " app-card-movable"
        overdue = card.over_time_limit
        if overdue:
            classes += " app-card-overdue"
        return format_html(
            '<article class="{}" id="card-{}-{}" data-record="{}" data-stage="{}"'
            ' data-testid="card"><div class="card-body"><div class="d-flex align-items-start'
            ' gap-1"><div class="min-w-0 flex-fill">{}{}</div>{}</div>'
            '<div class="app-card-meta">{}<span class="app-card-owner text-truncate">{}{}'
            '</span></div><div class="app-card-meta">{}</div></div></article>',
            classes,
            self.record_type,
            card.pk,
            card.pk,
            card.stage_id,
            self._title(card),
            self._subtitle(card),
            self._menu(card) if card.movable else "",
            format_html(
                '<span class="app-card-amount" data-testid="card-amount">{}</span>',
                card.amount_display,
            )
            if self.show_amount
            else "",
            self.owner_icon,
            card.owner.get_full_name() if card.owner_id else self.unassigned,
            self._time(card, overdue),
        )

    def _title(self, card) -> SafeString:
        text = card.title if self.is_deal else card.display_name
        if self.detail_url:
            before, after = self.detail_url
            return format_html(
                '<a href="{}{}{}" class="app-card-title" data-testid="card-title">{}</a>',
                before,
                card.pk,
                after,
                text,
            )
        return format_html('<span class="app-card-title" data-testid="card-title">{}</span>', text)

    def _subtitle(self, card) -> SafeString | str:
        if self.is_deal:
            text = card.customer.name
        else:
            number = phone(card.phone) if self.show_phone and card.phone else ""
            text = " · ".join(part for part in (card.title, number) if part)
            if not text:
                return ""
        return format_html('<div class="app-card-sub text-truncate">{}</div>', text)

    def _menu(self, card) -> SafeString:
        return format_html(
            '{}<input type="hidden" name="record" value="{}"><input type="hidden"'
            ' name="expected_stage" value="{}">{}{}</form></div>',
            self.menu_start,
            card.pk,
            card.stage_id,
            self.menu_header,
            card.move_menu,
        )

    def _time(self, card, overdue: bool) -> SafeString:
        if card.closed_at:
            return format_html(
                '<span class="text-secondary">{}{}</span>',
                self.closed_icon,
                gettext("Closed %(day)s") % {"day": day(card.closed_at)},
            )
        days = card.days_in_stage
        html = format_html(
            '<span class="text-secondary app-card-days" data-testid="card-days">{}{}</span>',
            self.days_icon,
            ngettext("%(days)s day in stage", "%(days)s days in stage", days) % {"days": days},
        )
        if overdue:
            limit = card.stage.time_limit_days
            title = ngettext(
                "Over this stage's limit of %(days)s day",
                "Over this stage's limit of %(days)s days",
                limit,
            ) % {"days": limit}
            html += format_html(
                '<span class="badge bg-red text-red-fg ms-auto" data-testid="overdue"'
                ' title="{}">{}</span>',
                title,
                self.overdue,
            )
        return mark_safe(html)  # noqa: S308 - both parts come from format_html
