"""A record's automation runs on its page (issue 15: "each run is logged ... visible on
the record's timeline"): the customer's, lead's and deal's pages show a card of the
latest runs of rules on the record — rule, trigger, status, time and what each action
did — to whoever sees the record, in two queries; none when nothing ran."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from automation.cards import RUNS_LIMIT
from automation.models import ActionRun, ActionStatus, Rule, RuleAction, RuleRun, RunStatus
from crm import events
from crm.models import Change, Task
from pipelines import services

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    LeadFactory,
    crm_permissions,
    stage,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")


@pytest.fixture
def team(org):
    perms = crm_permissions(actions=("view", "add", "change"), types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        user = org.set_scope(getattr(org, name), DataScope.OWN, perms)
        user.language = "en"
        user.save(update_fields=["language"])
        setattr(org, name, user)
    return org


@pytest.fixture
def deal(team):
    customer = CustomerFactory(owner=team.owner, name="上海恒信机械")
    return DealFactory(
        owner=team.owner,
        customer=customer,
        title="数控机床采购",
        amount=Decimal("1000"),
        expected_close_date=datetime.date(2027, 1, 1),
        contact=ContactFactory(customer=customer),
    )


def rule(name="报价跟进", record_type="deal", **fields) -> Rule:
    return Rule.objects.create(
        name=name, record_type=record_type, trigger=fields.pop("trigger", "stage_entered"), **fields
    )


def run_on(record, the_rule, *, status=RunStatus.DONE, results=(), minutes_ago=0, **fields):
    """A logged run of `the_rule` on `record`, with its actions' results."""
    run = RuleRun.objects.create(
        rule=the_rule,
        record_type=type(record).record_type,
        record_id=record.pk,
        record_label=str(record),
        occurrence=f"test-{RuleRun.objects.count()}",
        trigger=fields.pop("trigger", "entered 报价"),
        status=status,
        created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago),
        **fields,
    )
    for step, (result, action_status) in enumerate(results):
        ActionRun.objects.create(
            run=run, step=step, kind="create_task", result=result, status=action_status
        )
    return run


def card_runs(response) -> list[RuleRun]:
    for card in response.context["record_cards"]:
        if card.key == "automation_runs":
            return card.context["runs"]
    return []


def test_the_deal_page_shows_its_runs_with_their_actions(client, team, deal):
    quote = rule()
    run_on(
        deal,
        quote,
        results=[
            ("Created the task “跟进 数控机床采购” for 王芳.", ActionStatus.DONE),
            ("Nobody to notify (the owner's manager).", ActionStatus.SKIPPED),
        ],
        minutes_ago=5,
    )
    run_on(deal, rule("大单提醒"), status=RunStatus.NOT_MATCHED, trigger="amount changed")
    run_on(deal, rule("失败的规则"), status=RunStatus.FAILED, error="SMTP refused", minutes_ago=9)
    run_on(DealFactory(owner=team.owner), quote)  # another deal's run
    client.force_login(team.owner)

    response = client.get(reverse("deals:detail", args=[deal.pk]))

    assert response.status_code == 200
    runs = card_runs(response)
    assert [r.rule.name for r in runs] == ["大单提醒", "报价跟进", "失败的规则"]
    html = response.content.decode()
    assert 'data-testid="automation-runs"' in html
    assert "Created the task “跟进 数控机床采购” for 王芳." in html
    assert "Nobody to notify (the owner&#x27;s manager)." in html
    assert "Conditions not met" in html and "amount changed" in html
    assert "Failed" in html and "SMTP refused" in html
    assert "Done" in html and "entered 报价" in html


def test_the_card_shows_the_latest_runs_in_two_queries(client, team, deal):
    for n in range(RUNS_LIMIT + 5):
        run_on(deal, rule(f"规则{n}"), results=[("甲", ActionStatus.DONE)] * 3, minutes_ago=n)
    client.force_login(team.owner)
    url = reverse("deals:detail", args=[deal.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    runs = card_runs(response)
    assert [r.rule.name for r in runs] == [f"规则{n}" for n in range(RUNS_LIMIT)]
    asked = [
        q["sql"]
        for q in captured.captured_queries
        if "automation_rulerun" in q["sql"] or "automation_actionrun" in q["sql"]
    ]
    assert len(asked) == 2


def test_no_card_when_no_rule_ran(client, team, deal):
    client.force_login(team.owner)
    response = client.get(reverse("deals:detail", args=[deal.pk]))
    assert card_runs(response) == []
    assert 'data-testid="automation-runs"' not in response.content.decode()


def test_the_lead_and_customer_pages_show_their_runs(client, team):
    lead = LeadFactory(owner=team.owner, person_name="张伟", company_name="杭州远景科技")
    customer = CustomerFactory(owner=team.owner)
    run_on(lead, rule("线索分配", record_type="lead", trigger="created"), trigger="created")
    run_on(customer, rule("公海回收", record_type="customer", trigger="no_activity"))
    client.force_login(team.owner)
    lead_page = client.get(reverse("leads:detail", args=[lead.pk]))
    assert [r.rule.name for r in card_runs(lead_page)] == ["线索分配"]
    customer_page = client.get(reverse("customers:detail", args=[customer.pk]))
    assert [r.rule.name for r in card_runs(customer_page)] == ["公海回收"]
    assert 'data-testid="automation-runs"' in customer_page.content.decode()


def test_the_outsider_still_gets_404(client, team, deal):
    run_on(deal, rule())
    client.force_login(team.outsider)
    assert client.get(reverse("deals:detail", args=[deal.pk])).status_code == 404


def test_only_staff_get_links_to_the_rule_and_run_in_admin(client, team, deal, org):
    the_rule = rule()
    run = run_on(deal, the_rule)
    client.force_login(team.owner)
    html = client.get(reverse("deals:detail", args=[deal.pk])).content.decode()
    assert "/admin/" not in html
    client.force_login(org.admin)
    html = client.get(reverse("deals:detail", args=[deal.pk])).content.decode()
    assert reverse("admin:automation_rule_change", args=[the_rule.pk]) in html
    assert reverse("admin:automation_rulerun_change", args=[run.pk]) in html


def test_a_robots_run_shows_on_the_deal_page(
    client, team, deal, django_capture_on_commit_callbacks
):
    """The engine's own log, end to end: a stage robot makes a task when the deal enters
    报价, and the deal's page says so."""
    quote = stage("零售", "报价")
    robot = rule(pipeline=quote.pipeline, stage=quote, is_active=True)
    RuleAction.objects.create(
        rule=robot,
        order=0,
        kind="create_task",
        params={
            "title": "跟进 {{ record }}",
            "assignee": {"type": "owner"},
            "due": {"amount": 2, "unit": "days"},
            "working_hours": False,
        },
    )
    services.move_to_stage(record=deal, stage=quote, by=team.owner)
    event = Change.objects.get(record_id=deal.pk, kind="stage_moved")
    with django_capture_on_commit_callbacks(execute=True):
        events.deliver([event.pk])
    task = Task.objects.get()

    client.force_login(team.owner)
    response = client.get(reverse("deals:detail", args=[deal.pk]))

    (run,) = card_runs(response)
    assert run.rule == robot and run.status == RunStatus.DONE
    (action,) = run.action_runs.all()
    assert action.object_id == task.pk
    assert action.result and action.result in response.content.decode()
