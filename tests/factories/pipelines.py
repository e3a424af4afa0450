"""Factories of pipelines: pipelines, stages, leads and deals; and the seeded stages tests
use (线索 for leads; 零售, the default, and 批发 for deals).

A lead or a deal stands in a stage of its pipeline: give the stage (its pipeline
follows), the pipeline (its first open stage), or neither (the default pipeline's first
open stage). Status, probability and closed time follow the stage as the stage service
sets them, and a lost one gets a lost reason. Rows are written directly, without the
stage history and events the services write: tests of those call the services, e.g.
DealFactory.created_by(user, ...)."""

from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone

from pipelines.models import (
    Deal,
    DealStatus,
    Lead,
    LeadStatus,
    Pipeline,
    PipelineKind,
    Stage,
    StageKind,
)

from .accounts import UserFactory
from .crm import CustomerFactory, item

DEAL_STATUS = {
    StageKind.OPEN: DealStatus.OPEN,
    StageKind.WON: DealStatus.WON,
    StageKind.LOST: DealStatus.LOST,
}
LEAD_STATUS = {
    StageKind.OPEN: LeadStatus.OPEN,
    StageKind.WON: LeadStatus.CONVERTED,
    StageKind.LOST: LeadStatus.LOST,
}


def stage(pipeline: str, name: str) -> Stage:
    """A stage by its pipeline's name and its own, e.g. stage("零售", "报价")."""
    return Stage.objects.select_related("pipeline").get(pipeline__name=pipeline, name=name)


class PipelineFactory(factory.django.DjangoModelFactory):
    """A deal pipeline of its own (not the default) with no stages: add StageFactory rows."""

    class Meta:
        model = Pipeline

    kind = PipelineKind.DEAL
    name = factory.Sequence(lambda n: f"管道{n}")
    order = factory.Sequence(lambda n: 100 + n)


class StageFactory(factory.django.DjangoModelFactory):
    """An open stage at the end of its pipeline; won and lost ones get 100 % and 0 %."""

    class Meta:
        model = Stage

    pipeline = factory.SubFactory(PipelineFactory)
    name = factory.Sequence(lambda n: f"阶段{n}")
    order = factory.Sequence(lambda n: 10 * (n + 1))
    kind = StageKind.OPEN
    probability = factory.LazyAttribute(
        lambda s: {StageKind.WON: 100, StageKind.LOST: 0}.get(s.kind, 10)
    )


class _StagedFactory(factory.django.DjangoModelFactory):
    """What LeadFactory and DealFactory share: the stage, and what follows from it."""

    class Meta:
        abstract = True

    _pipeline_kind = ""  # set by the subclasses
    _status_of = {}

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        stage_ = kwargs.get("stage")
        if stage_ is None:
            pipeline = kwargs.get("pipeline") or Pipeline.objects.get(
                kind=cls._pipeline_kind, is_default=True
            )
            stage_ = pipeline.first_open_stage()
            kwargs["stage"] = stage_
        if kwargs.get("pipeline") is None:
            kwargs["pipeline"] = stage_.pipeline  # (both given: as given, to test refusals)
        kwargs.setdefault("status", cls._status_of[stage_.kind])
        if stage_.kind != StageKind.OPEN:
            kwargs.setdefault("closed_at", timezone.now())
        if stage_.kind == StageKind.LOST:
            kwargs.setdefault("lost_reason", item("lost_reason", "price"))
        return kwargs

    @classmethod
    def created_by(cls, by, **kwargs):
        """Made through the service as a person would (history, events, checks): the
        factory's values are the form's, the stage the first one unless given."""
        from pipelines import services

        kwargs.setdefault("owner", by)
        record = cls.build(**kwargs)
        create = services.create_deal if cls._meta.model is Deal else services.create_lead
        return create(**{cls._meta.model._meta.model_name: record, "by": by})


class LeadFactory(_StagedFactory):
    """A lead someone owns (owner=None: not assigned yet, the pool), with a name."""

    class Meta:
        model = Lead

    _pipeline_kind = PipelineKind.LEAD
    _status_of = LEAD_STATUS

    person_name = factory.Sequence(lambda n: f"线索联系人{n}")
    owner = factory.SubFactory(UserFactory)


class DealFactory(_StagedFactory):
    """A deal of a customer its owner owns, at the stage's probability."""

    class Meta:
        model = Deal

    _pipeline_kind = PipelineKind.DEAL
    _status_of = DEAL_STATUS

    title = factory.Sequence(lambda n: f"商机{n}")
    owner = factory.SubFactory(UserFactory)
    customer = factory.SubFactory(CustomerFactory, owner=factory.SelfAttribute("..owner"))
    amount = Decimal("0")

    @classmethod
    def _adjust_kwargs(cls, **kwargs):
        kwargs = super()._adjust_kwargs(**kwargs)
        kwargs.setdefault("probability", kwargs["stage"].probability)
        return kwargs
