"""The board's filters. (The small form a move asks for is pipelines.moves.StageMoveForm,
shared with the record pages.)"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.filters import DepartmentFilter, OwnerFilter, RecordFilterSet, owner_choices

from .kinds import DEAL, LEAD, staged_type
from .models import Deal, Lead


class _BoardFilter(RecordFilterSet):
    owner = OwnerFilter(label=_("Owner"), choices=())
    department = DepartmentFilter(label=_("Department"))

    pool = False

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["owner"].extra["choices"] = owner_choices(request, pool=self.pool)

    def add_field_filters(self, request, record_type: str) -> None:
        # The board filters by people only; a list's custom-field filters live there.
        return None


class DealBoardFilter(_BoardFilter):
    class Meta:
        model = Deal
        fields: list[str] = []


class LeadBoardFilter(_BoardFilter):
    pool = True

    class Meta:
        model = Lead
        fields: list[str] = []


BOARD_FILTERS: dict[str, type[_BoardFilter]] = {
    DEAL.key: DealBoardFilter,
    LEAD.key: LeadBoardFilter,
}


def board_filter_class(model) -> type[_BoardFilter]:
    return BOARD_FILTERS[staged_type(model).key]
