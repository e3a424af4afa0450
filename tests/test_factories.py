"""The test factories make rows the application itself would accept: each passes the
model's full_clean, a deal stands in a stage of its pipeline with its customer, and
the seeded dictionaries and pipelines are reused, not copied."""

import pytest

from crm.models import Dictionary, DictionaryItem
from pipelines.models import DealStatus, LeadStatus, Pipeline, StageKind

from . import factories
from .factories import (
    CustomerFactory,
    DealFactory,
    DictionaryItemFactory,
    LeadFactory,
    PipelineFactory,
    StageFactory,
    stage,
)

pytestmark = pytest.mark.django_db

FACTORIES = [getattr(factories, name) for name in factories.__all__ if name.endswith("Factory")]


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
def test_every_factory_makes_a_row_the_models_checks_accept(factory):
    first, second = factory(), factory()
    for row in (first, second):
        row.full_clean()
    assert first.pk != second.pk


def test_a_deal_is_in_the_default_pipelines_first_open_stage_of_its_owners_customer():
    deal = DealFactory()
    assert deal.pipeline == Pipeline.objects.get(kind="deal", is_default=True)
    assert deal.stage == deal.pipeline.first_open_stage()
    assert deal.customer.owner == deal.owner
    assert (deal.status, deal.probability, deal.closed_at) == (DealStatus.OPEN, 10, None)


def test_a_deal_given_a_stage_follows_it_as_the_stage_service_would():
    won = DealFactory(stage=stage("批发", "赢单"))
    assert won.pipeline.name == "批发"
    assert (won.status, won.probability) == (DealStatus.WON, 100)
    assert won.closed_at is not None
    lost = DealFactory(stage=stage("零售", "输单"))
    assert lost.status == DealStatus.LOST and lost.lost_reason.code == "price"


def test_a_deal_given_a_pipeline_starts_in_its_first_open_stage():
    pipeline = PipelineFactory()
    StageFactory(pipeline=pipeline, kind=StageKind.WON)
    first = StageFactory(pipeline=pipeline, order=1)
    assert DealFactory(pipeline=pipeline).stage == first


def test_a_lead_is_in_the_lead_pipeline_and_converted_in_its_won_stage():
    lead = LeadFactory()
    assert lead.pipeline.kind == "lead" and lead.status == LeadStatus.OPEN
    assert LeadFactory(stage=stage("线索", "已转化")).status == LeadStatus.CONVERTED


def test_seeded_dictionaries_are_reused():
    seeded = DictionaryItem.objects.get(dictionary__code="activity_kind", code="call")
    assert DictionaryItemFactory(dictionary__code="activity_kind", code="call") == seeded
    assert Dictionary.objects.filter(code="activity_kind").count() == 1


def test_services_make_the_record_when_asked(org):
    from .factories import crm_permissions

    owner = org.set_scope(org.owner, "own", crm_permissions(types=("customer", "deal")))
    deal = DealFactory.created_by(owner, customer=CustomerFactory(owner=owner))
    assert deal.owner == owner and deal.created_by == owner
    assert deal.stage == deal.pipeline.first_open_stage()
