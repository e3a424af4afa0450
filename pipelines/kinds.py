"""Leads and deals: what differs between the two staged record types, in one place.

Both move through a pipeline's stages with the same models around them (Stage,
StageHistory), the same services and the same pages. What differs — the model, the
pipeline kind, the URL namespace, whether there is an amount, how a record is won — is
looked up here from whatever the caller has (a record, a model, a pipeline or its kind),
instead of each view, form and template asking `isinstance(record, Lead)` on its own.

A record type key ("lead", "deal") is also the record's `access` key
(`Lead.record_type`) and its pipelines' `Pipeline.kind`: the three are one name.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.urls import reverse

from .models import Deal, Lead, Pipeline, PipelineKind


@dataclass(frozen=True)
class StagedType:
    key: str  # the record type, the pipeline kind: "lead" / "deal"
    model: type[Lead] | type[Deal]
    url_namespace: str  # "leads" / "deals": <namespace>:list, :detail, :create, :move...
    has_amount: bool  # an amount (and a weighted one): deals' board totals and pages
    # A lead is won by converting it into a deal (the convert page), never by a plain move
    # to its pipeline's won stage.
    won_by_conversion: bool

    @property
    def kind(self) -> PipelineKind:
        return PipelineKind(self.key)

    def url_name(self, view: str) -> str:
        """A URL name of this type's pages, e.g. url_name("detail") -> "deals:detail"."""
        return f"{self.url_namespace}:{view}"

    def url(self, view: str, *args) -> str:
        return reverse(self.url_name(view), args=args)


DEAL = StagedType("deal", Deal, "deals", has_amount=True, won_by_conversion=False)
LEAD = StagedType("lead", Lead, "leads", has_amount=False, won_by_conversion=True)
# Deals first: the board and its pipeline picker list deal pipelines first.
STAGED_TYPES: tuple[StagedType, ...] = (DEAL, LEAD)
_BY_KEY = {t.key: t for t in STAGED_TYPES}
_BY_MODEL = {t.model: t for t in STAGED_TYPES}


def staged_type(of: str | Pipeline | models.Model | type[models.Model]) -> StagedType:
    """The staged type of a record type key or pipeline kind ("lead"), a pipeline, a
    model or a record. Anything else is a programming error: LookupError."""
    if isinstance(of, str):
        found = _BY_KEY.get(str(of))
    elif isinstance(of, Pipeline):
        found = _BY_KEY.get(of.kind)
    else:
        model = of if isinstance(of, type) else type(of)
        found = _BY_MODEL.get(model._meta.concrete_model)
    if found is None:
        raise LookupError(f"{of!r} is neither a lead nor a deal")
    return found
