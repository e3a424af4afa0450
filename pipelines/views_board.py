"""The kanban board of a pipeline (/pipelines/<id>/board/).

A column per stage (open ones in order, then won and lost) with its count, amount and
weighted amount (one aggregate query) and its first cards (one query for all columns),
asked through pipelines.selectors.BoardQuery, so a board costs the same number of
queries for ten deals or fifty thousand. A column loads more cards on demand. Won and
lost columns show what closed recently.

Moves (drag and drop, or a card's "Move to…" menu on a phone) post to the move
endpoint, which calls services.move_to_stage (DESIGN rule 3) and answers with htmx
out-of-band swaps: the card in its new column and the two columns' totals; a small
form when the stage needs fields filled or a lost reason; otherwise a message and the
columns as they are in the database. A move's message offers to undo it (the undo
endpoint moves the record back, pipelines.moves.request_undo).

The board scrolls sideways while a card is dragged near its edge (static/pipelines/
board.js); a compact layout (a cookie, so the page renders in it) fits a pipeline of six
to eight stages on a 1,280 px screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import access
from accounts.models import DataScope
from crm.html import format_html, format_html_join
from crm.money import money_html
from crm.params import MAX_PAGE, id_param, int_param
from crm.widgets import style

from . import selectors
from .board_cards import CardMaker
from .forms_board import board_filter_class
from .kinds import DEAL, STAGED_TYPES, staged_type
from .models import Pipeline, PipelineKind, Stage, StageHistory, StageKind
from .moves import MoveOutcome, request_move, request_undo
from .selectors import CARDS_PER_COLUMN, CLOSED_DAYS

FILTER_PARAMS = ("owner", "department")
# The cookie that keeps the compact layout ("1"); board.js sets it.
COMPACT_COOKIE = "crm_board_compact"


def usable_pipelines(user) -> list[Pipeline]:
    """Active pipelines whose records the user's role may view."""
    kinds = [t.kind for t in STAGED_TYPES if access.has_permission(user, t.key, "view")]
    if not kinds:
        return []
    pipelines = Pipeline.objects.active().filter(kind__in=kinds)
    # Deal pipelines first: the board is mostly about deals.
    return sorted(pipelines, key=lambda p: (p.kind != PipelineKind.DEAL, p.order, p.pk))


@dataclass
class BoardColumn:
    stage: Stage
    count: int = 0
    amount: Decimal = Decimal("0")
    weighted: Decimal = Decimal("0")
    cards: list = field(default_factory=list)

    @property
    def has_more(self) -> bool:
        return self.count > len(self.cards)

    @property
    def closed(self) -> bool:
        return self.stage.kind != StageKind.OPEN

    @property
    def amount_display(self) -> str:
        return money_html(self.amount)  # compact, the exact amount as its title

    @property
    def weighted_display(self) -> str:
        return money_html(self.weighted)


class Board:
    """One pipeline's board for one user and the board's filters."""

    def __init__(self, request, pipeline: Pipeline):
        self.request, self.user, self.pipeline = request, request.user, pipeline
        self.type = staged_type(pipeline)
        self.model, self.record_type = self.type.model, self.type.key
        if not access.has_permission(self.user, self.record_type, "view"):
            raise PermissionDenied
        self.stages: list[Stage] = selectors.board_stages(pipeline)
        self.by_id = {stage.pk: stage for stage in self.stages}
        visible = selectors.board_records(self.user, pipeline)
        params = request.GET.copy()
        for key in list(params):
            if key not in FILTER_PARAMS:
                del params[key]
        self.filterset = board_filter_class(self.model)(
            params or None, queryset=visible, request=request
        )
        self.records = self.filterset.qs if self.filterset.is_bound else visible
        self.query = urlencode([(k, v) for k in params for v in params.getlist(k) if v])
        # What the columns hold (pipelines.selectors): the same for the API.
        self.lookup = selectors.BoardQuery(
            self.user, pipeline, stages=self.stages, records=self.records
        )

    # --- what the user may see and do -----------------------------------------------
    @cached_property
    def hidden(self) -> frozenset[str]:
        return access.hidden_fields(self.user, self.record_type)

    @property
    def show_amount(self) -> bool:
        return self.type.has_amount and "amount" not in self.hidden

    @cached_property
    def can_change(self) -> bool:
        return access.has_permission(self.user, self.record_type, "change")

    def can_move(self, record) -> bool:
        # Visible records with an owner are inside the user's change scope too; an
        # unassigned lead (the pool) is changed only with the "all" scope.
        if not self.can_change:
            return False
        return record.owner_id is not None or access.data_scope(self.user) == DataScope.ALL

    # --- queries (pipelines.selectors.BoardQuery), cards decorated for this user ------
    def columns(self, stages: list[Stage] | None = None, *, cards=True) -> list[BoardColumn]:
        """Columns with totals and first cards: two queries however many records (one
        without the cards)."""
        return [
            BoardColumn(
                stage=totals.stage,
                count=totals.count,
                amount=totals.amount,
                weighted=totals.weighted,
                cards=[self.decorate(card) for card in found],
            )
            for totals, found in self.lookup.columns(stages, cards=cards)
        ]

    def column(self, stage: Stage) -> BoardColumn:
        return self.columns([stage])[0]

    def page(self, stage: Stage, offset: int) -> tuple[list, bool]:
        """The cards of one column after the first `offset`, and whether more follow."""
        cards, more = self.lookup.page(stage, offset)
        return [self.decorate(card) for card in cards], more

    def card(self, pk: int):
        record = self.lookup.with_card_relations(self.model.objects.filter(pk=pk)).first()
        return self.decorate(record) if record is not None else None

    def decorate(self, card):
        stage = self.by_id.get(card.stage_id)
        if stage is not None:
            card.stage = stage  # the loaded stage: days in stage and time limit, no query
        card.movable = self.can_move(card)
        if card.movable:
            menu = self.stage_menus.get(card.stage_id, "")
            # Safe: the menu is built with format_html, the id is an integer.
            card.move_menu = mark_safe(menu.replace(_CARD_MARK, str(card.pk)))  # noqa: S308
        if self.type.has_amount:
            card.amount_display = money_html(card.amount)
        card.html = self.card_maker.render(card)
        return card

    @cached_property
    def card_maker(self) -> CardMaker:
        return CardMaker(
            self.request,
            record_type=self.record_type,
            is_deal=self.type is DEAL,
            show_amount=self.show_amount,
            show_phone="phone" not in self.hidden,
            detail_url=_url_parts(self.type.url_name("detail")),
            move_url=self.move_url,
        )

    @cached_property
    def move_url(self) -> str:
        return reverse("board:move", args=[self.pipeline.pk]) + (
            f"?{self.query}" if self.query else ""
        )

    # --- rendering -------------------------------------------------------------------
    @cached_property
    def stage_menus(self) -> dict[int, SafeString]:
        """Each stage's "Move to…" entries (every other stage), built once per board
        rather than once per card: a board of 160 cards rendered 1,100 menu entries
        through the template. A conversion link carries the card's id as _CARD_MARK."""
        convert = _url_parts(self.type.url_name("convert")) if self.type.won_by_conversion else None
        menus = {}
        for current in self.stages:
            entries = []
            for stage in self.stages:
                pk, name = stage.pk, stage.display_name
                if pk == current.pk:
                    continue
                if stage.kind == StageKind.WON and convert:
                    entries.append(
                        format_html(
                            '<a class="dropdown-item" href="{}{}{}" data-testid="convert">{}…</a>',
                            convert[0],
                            _CARD_MARK,
                            convert[1],
                            name,
                        )
                    )
                else:
                    entries.append(
                        format_html(
                            '<button type="submit" name="stage" value="{}" class="dropdown-item"'
                            ' data-move-to="{}">{}</button>',
                            pk,
                            pk,
                            name,
                        )
                    )
            menus[current.pk] = format_html_join("", "{}", ((entry,) for entry in entries))
        return menus

    def context(self, **extra) -> dict:
        return {
            "board": self,
            "pipeline": self.pipeline,
            "stages": self.stages,
            "query": self.query,
            "is_deal": self.type is DEAL,
            "show_amount": self.show_amount,
            "show_phone": "phone" not in self.hidden,
            "closed_days": CLOSED_DAYS,
            "record_type": self.record_type,
            "detail_url": _url_parts(self.type.url_name("detail")),
            "convert_url": (
                _url_parts(self.type.url_name("convert")) if self.type.won_by_conversion else None
            ),
            "create_url": self.type.url("create"),
            "move_url": self.move_url,
            "undo_url": reverse("board:undo", args=[self.pipeline.pk])
            + (f"?{self.query}" if self.query else ""),
            **extra,
        }


@login_required
@require_GET
def index(request):
    """The default deal pipeline's board, or a picker of the pipelines the user may use."""
    pipelines = usable_pipelines(request.user)
    if not pipelines and not (
        access.has_permission(request.user, "deal", "view")
        or access.has_permission(request.user, "lead", "view")
    ):
        raise PermissionDenied
    deals = [p for p in pipelines if p.kind == PipelineKind.DEAL]
    if deals and "pick" not in request.GET:
        default = next((p for p in deals if p.is_default), deals[0])
        return redirect("board:board", pk=default.pk)
    return render(request, "pipelines/board_index.html", {"pipelines": pipelines})


@login_required
@require_GET
def board(request, pk: int):
    pipeline = get_object_or_404(Pipeline, pk=pk)
    board = Board(request, pipeline)
    form = style(board.filterset.form)
    return render(
        request,
        "pipelines/board.html",
        board.context(
            columns=board.columns(),
            filter_form=form,
            filters_active=bool(board.query),
            pipelines=usable_pipelines(request.user),
            compact=request.COOKIES.get(COMPACT_COOKIE) == "1",
            compact_cookie=COMPACT_COOKIE,
        ),
    )


@login_required
@require_GET
def column(request, pk: int, stage_id: int):
    """More cards of one column (htmx: the "load more" button)."""
    pipeline = get_object_or_404(Pipeline, pk=pk)
    board = Board(request, pipeline)
    stage = board.by_id.get(stage_id)
    if stage is None:
        raise Http404
    offset = int_param(request.GET, "offset", CARDS_PER_COLUMN, maximum=MAX_PAGE)
    cards, more = board.page(stage, offset)
    return render(
        request,
        "pipelines/partials/board_cards_page.html",
        board.context(stage=stage, cards=cards, more=more, offset=offset + len(cards)),
    )


_URL_PK = 987654321


_CARD_MARK = "__card__"


def _url_parts(name: str) -> tuple[str, str] | None:
    """A record URL around its id, (before, after), when the URL exists: cards build
    theirs without a reverse each."""
    try:
        url = reverse(name, args=[_URL_PK])
    except NoReverseMatch:
        return None
    before, _sep, after = url.partition(str(_URL_PK))
    return before, after


@login_required
@require_POST
def move(request, pk: int):
    """Move a card: POST record, stage (the target) and expected_stage (the column the
    card was in). With `move_form`, the small form's fields come along. The move itself
    is pipelines.moves.request_move, as on the record pages; this view presents it."""
    pipeline = get_object_or_404(Pipeline, pk=pk)
    board = Board(request, pipeline)
    record_id, stage_id = id_param(request.POST, "record"), id_param(request.POST, "stage")
    if record_id is None or stage_id is None:
        return HttpResponseBadRequest(_("Say which record moves where."))
    record = access.get_object_for_user_or_404(
        request.user, board.model.objects.filter(pipeline=pipeline), pk=record_id
    )
    stage = board.by_id.get(stage_id)
    if stage is None:
        raise Http404
    was_in = record.stage_id
    answer = Move(board, record, stage, expected_stage_id=id_param(request.POST, "expected_stage"))
    outcome = request_move(record=record, stage=stage, user=request.user, data=request.POST)
    if outcome.needs_input:
        return answer.ask(outcome)
    if outcome.refused:
        return answer.refused(outcome.message, code=outcome.code)
    return answer.done(was_in, outcome.message, undo=outcome.history)


@login_required
@require_POST
def undo(request, pk: int):
    """Take back a move just made (POST move: its StageHistory id): the record goes back
    to the stage it came from, answered like a move. pipelines.moves.request_undo says
    when that is refused (another user's move, too late, moved since)."""
    pipeline = get_object_or_404(Pipeline, pk=pk)
    board = Board(request, pipeline)
    history_id = id_param(request.POST, "move")
    if history_id is None:
        return HttpResponseBadRequest(_("Say which move to undo."))
    history = get_object_or_404(
        StageHistory.objects.select_related("from_stage", "to_stage"),
        pk=history_id,
        record_type=board.record_type,
        pipeline=pipeline,
    )
    record = access.get_object_for_user_or_404(
        request.user, board.model.objects.filter(pipeline=pipeline), pk=history.record_id
    )
    outcome = request_undo(history=history, record=record, user=request.user)
    back = board.by_id.get(history.from_stage_id) or history.to_stage
    answer = Move(board, record, back, expected_stage_id=history.to_stage_id)
    if outcome.refused:
        return answer.refused(outcome.message, code=outcome.code)
    return answer.done(history.to_stage_id, outcome.message)


class Move:
    """The answers of the move endpoint (htmx out-of-band swaps, or a redirect)."""

    def __init__(self, board: Board, record, stage: Stage, *, expected_stage_id):
        self.board, self.record, self.stage = board, record, stage
        self.request = board.request
        self.expected_stage_id = expected_stage_id

    def _back(self) -> HttpResponseRedirect:
        url = reverse("board:board", args=[self.board.pipeline.pk])
        return HttpResponseRedirect(url + (f"?{self.board.query}" if self.board.query else ""))

    def _columns(self, *stage_ids, cards=True) -> list[BoardColumn]:
        stages = []
        for stage_id in stage_ids:
            stage = self.board.by_id.get(stage_id)
            if stage is not None and stage not in stages:
                stages.append(stage)
        stages.sort(key=self.board.stages.index)
        return self.board.columns(stages, cards=cards) if stages else []

    def _render(self, **context) -> HttpResponse:
        html = render_to_string(
            "pipelines/partials/board_move_response.html",
            self.board.context(record=self.record, target=self.stage, **context),
            request=self.request,
        )
        return HttpResponse(html)

    def ask(self, outcome: MoveOutcome) -> HttpResponse:
        """The small form (a modal). Asked for the first time (the form is not filled in
        yet), the card goes back to its column meanwhile."""
        form = outcome.form
        if not self.request.htmx:
            message = _("Fill in the form to move it.") if form.is_bound else outcome.message
            messages.warning(self.request, message)
            return self._back()
        reset = not form.is_bound
        columns = self._columns(self.expected_stage_id, self.stage.pk) if reset else []
        return self._render(
            form=form,
            columns=columns,
            expected_stage_id=self.expected_stage_id or self.record.stage_id,
        )

    def refused(self, message: str, *, code: str) -> HttpResponse:
        """A message, and the columns involved as they are in the database."""
        if not self.request.htmx:
            messages.error(self.request, message)
            return self._back()
        current = self.board.model.objects.filter(pk=self.record.pk).values_list(
            "stage_id", flat=True
        )
        columns = self._columns(self.expected_stage_id, self.stage.pk, *current)
        return self._render(message=message, level="warning", code=code, columns=columns)

    def done(self, was_in: int, message: str, *, undo: StageHistory | None = None) -> HttpResponse:
        """The card in its new column and both columns' totals; `undo`: the move the
        message offers to take back."""
        if not self.request.htmx:
            messages.success(self.request, message)
            return self._back()
        card = self.board.card(self.record.pk)
        columns = self._columns(was_in, self.stage.pk, cards=False)
        return self._render(
            card=card, heads=columns, message=message, level="success", moved=True, undo=undo
        )
