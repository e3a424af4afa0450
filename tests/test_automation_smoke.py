"""Smoke: a stage robot creates a task when a deal enters its stage."""

import pytest

from accounts.models import DataScope
from automation.models import ActionRun, Rule, RuleAction, RuleRun, RunStatus
from crm import events
from crm.models import Change, Task
from pipelines import services

from .factories import DealFactory, crm_permissions, stage

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def team(org):
    permissions = crm_permissions(("view", "add", "change"), types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, permissions))
    return org


def test_robot_makes_a_task(team, django_capture_on_commit_callbacks):
    quote = stage("零售", "报价")
    rule = Rule.objects.create(
        name="报价跟进",
        record_type="deal",
        pipeline=quote.pipeline,
        stage=quote,
        trigger="stage_entered",
        is_active=True,
    )
    RuleAction.objects.create(
        rule=rule,
        order=0,
        kind="create_task",
        params={
            "title": "跟进 {{ record }}",
            "assignee": {"type": "owner"},
            "due": {"amount": 2, "unit": "days"},
            "working_hours": False,
            "complete_on_leave": True,
        },
    )
    import datetime
    from decimal import Decimal

    from .factories import ContactFactory

    deal = DealFactory(
        owner=team.owner, amount=Decimal("1000"), expected_close_date=datetime.date(2027, 1, 1)
    )
    deal.contact = ContactFactory(customer=deal.customer)
    deal.save()
    services.move_to_stage(record=deal, stage=quote, by=team.owner)
    event = Change.objects.filter(record_id=deal.pk, kind="stage_moved").get()
    assert event.delivered_at is None
    with django_capture_on_commit_callbacks(execute=True):
        events.deliver([event.pk])
    run = RuleRun.objects.get()
    assert run.status == RunStatus.DONE, (run.error, run.trace)
    task = Task.objects.get()
    assert task.assignee == team.owner and deal.title in task.title
    assert ActionRun.objects.get().object_id == task.pk
    # leaving the stage completes it
    nxt = (
        stage("零售", "成交")
        if False
        else quote.pipeline.stages.filter(order__gt=quote.order, kind="open").first()
    )
    services.move_to_stage(record=deal, stage=nxt, by=team.owner)
    event2 = Change.objects.filter(record_id=deal.pk, kind="stage_moved").order_by("-pk").first()
    with django_capture_on_commit_callbacks(execute=True):
        events.deliver([event2.pk])
    task.refresh_from_db()
    assert task.status == "done"
