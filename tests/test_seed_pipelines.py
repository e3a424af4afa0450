"""`manage.py seed_pipelines`: demo leads and deals in every stage, made through the
services with a realistic history; running it again adds nothing."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from io import StringIO
from itertools import pairwise

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from accounts.models import User
from pipelines.models import (
    Deal,
    DealStatus,
    Lead,
    LeadStatus,
    Pipeline,
    StageHistory,
    StageKind,
)

DEMO_OWNERS = {"wangfang", "lina", "liuyang", "chenjing", "zhangwei"}


def seed() -> str:
    out = StringIO()
    call_command("seed_pipelines", force=True, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(db):
    """seed_demo fills the pipelines too (its registered step); the output of both."""
    out = StringIO()
    call_command("seed_demo", force=True, stdout=out)
    return out.getvalue() + seed()


def test_it_needs_the_demo_company_first(db):
    with pytest.raises(CommandError, match="run seed_demo first"):
        seed()


def test_it_refuses_without_debug_unless_forced(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_pipelines", stdout=StringIO())


def test_every_stage_of_every_pipeline_has_records(seeded):
    assert "50 leads (8 converted)" in seeded
    assert seeded.endswith("Demo leads and deals already present: nothing added.\n")
    for pipeline in Pipeline.objects.prefetch_related("stages"):
        model = Lead if pipeline.kind == "lead" else Deal
        counts = Counter(model.objects.filter(pipeline=pipeline).values_list("stage", flat=True))
        empty = [s.name for s in pipeline.stages.all() if not counts[s.pk]]
        assert empty == [], pipeline.name
    assert Lead.objects.count() >= 40 and Deal.objects.count() >= 50


def test_leads_unassigned_converted_and_lost(seeded):
    assert Lead.objects.filter(owner__isnull=True, status=LeadStatus.OPEN).count() == 6
    converted = Lead.objects.filter(status=LeadStatus.CONVERTED)
    assert converted.count() == 8
    for lead in converted.select_related("converted_customer", "converted_contact"):
        assert lead.converted_customer is not None and lead.converted_contact is not None
        assert lead.converted_contact.customer == lead.converted_customer
        assert lead.company_name == lead.converted_customer.name
        assert lead.converted_customer.owner == lead.owner
    with_deal = converted.filter(converted_deal__isnull=False)
    assert with_deal.count() == 4
    assert all(lead.converted_deal.customer_id == lead.converted_customer_id for lead in with_deal)
    lost = Lead.objects.filter(status=LeadStatus.LOST)
    assert lost.count() == 6 and not lost.filter(lost_reason__isnull=True).exists()


def test_deals_owned_by_the_demo_people_on_their_customers(seeded):
    deals = Deal.objects.select_related("customer", "owner", "stage")
    owners = set(deals.values_list("owner__username", flat=True))
    assert owners <= DEMO_OWNERS and len(owners) >= 4
    assert all(d.customer.owner_id == d.owner_id for d in deals)
    amounts = [d.amount for d in deals]
    assert min(amounts) >= Decimal("50000") and max(amounts) <= Decimal("3000000")
    assert all(d.expected_close_date for d in deals)
    assert {d.title for d in deals} >= {"年度设备采购"} or len({d.title for d in deals}) > 10
    won = deals.filter(status=DealStatus.WON)
    assert won.exists() and all(d.probability == 100 and d.closed_at for d in won)
    lost = deals.filter(status=DealStatus.LOST)
    assert lost.exists() and not lost.filter(lost_reason__isnull=True).exists()
    # Some open deals are past their stage's time limit, most are not.
    open_deals = [d for d in deals if d.stage.kind == StageKind.OPEN]
    over = [d for d in open_deals if d.over_time_limit]
    assert 0 < len(over) < len(open_deals)


def test_history_has_realistic_dates(seeded):
    for deal in Deal.objects.filter(status=DealStatus.WON).select_related("stage")[:5]:
        rows = list(
            StageHistory.objects.filter(record_type="deal", record_id=deal.pk).order_by("id")
        )
        assert [r.to_stage.kind for r in rows][-1] == StageKind.WON
        assert rows[0].from_stage is None and len(rows) == 7
        times = [r.moved_at for r in rows]
        assert times == sorted(times) and times[0] < times[-1]
        assert deal.created_at == times[0] and deal.stage_entered_at == times[-1]
        assert deal.closed_at == times[-1]
        for previous, row in pairwise(rows):
            assert row.seconds_in_previous == int(
                (row.moved_at - previous.moved_at).total_seconds()
            )
    entered = Deal.objects.values_list("stage_entered_at", flat=True)
    assert len({e.date() for e in entered}) > 20  # not all "today"


def test_running_it_again_adds_nothing(seeded):
    before = (
        Lead.objects.count(),
        Deal.objects.count(),
        StageHistory.objects.count(),
    )
    assert "nothing added" in seed()
    assert (Lead.objects.count(), Deal.objects.count(), StageHistory.objects.count()) == before


def test_reps_see_their_own_deals_on_the_board(seeded):
    rep = User.objects.select_related("role").get(username="wangfang")
    visible = Deal.objects.visible_to(rep)
    assert visible.exists()
    assert set(visible.values_list("owner__username", flat=True)) == {"wangfang"}
    per_owner = dict(Deal.objects.values_list("owner__username").annotate(n=Count("pk")))
    assert visible.count() == per_owner["wangfang"]
