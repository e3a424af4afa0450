"""The rules the demo company ships with: `seed_demo` adds them once, as an admin would
save them, active where they would not surprise; the lead robots work on the demo's own
leads."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.demo import seed_organisation
from accounts.models import User
from automation.actions import clean_params
from automation.conditions import clean_conditions
from automation.demo import seed_for_demo
from automation.engine import run_due
from automation.models import (
    EmailTemplate,
    Notification,
    Rule,
    RuleAction,
    RuleRun,
    RunStatus,
    ScheduledAction,
    ScheduledStatus,
)
from automation.rules import clean_trigger
from crm.models import Task, TaskStatus
from pipelines import services
from pipelines.models import Deal, Lead, Pipeline, Stage

from .factories import deliver_events

LEAD_ROBOTS = {"新线索自动分配", "新线索跟进任务", "线索两天未推进提醒经理"}
ACTIVE = LEAD_ROBOTS | {"报价提醒", "超时预警"}
INACTIVE = {"30天未跟进退回公海：提前3天提醒", "30天未跟进退回公海", "联系人生日祝福"}


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", force=True, stdout=out)
    return out.getvalue()


def rules() -> list[tuple]:
    """Every rule as what it does: its place, trigger, conditions and actions."""
    return [
        (
            rule.name,
            rule.record_type,
            rule.pipeline_id,
            rule.stage_id,
            rule.is_active,
            rule.trigger,
            rule.trigger_params,
            rule.conditions,
            [(a.kind, a.params) for a in rule.actions.order_by("order", "id")],
        )
        for rule in Rule.objects.order_by("name")
    ]


@pytest.fixture
def demo(db):
    """The whole demo company: its organisation, customers, leads, deals and rules."""
    seed()


@pytest.fixture
def demo_rules(db):
    """The demo organisation and its rules, without the records (quicker)."""
    seed_organisation()
    seed_for_demo()


def test_the_demo_ships_its_rules_active_where_they_would_not_surprise(demo_rules):
    assert set(Rule.objects.filter(is_active=True).values_list("name", flat=True)) == ACTIVE
    assert set(Rule.objects.filter(is_active=False).values_list("name", flat=True)) == INACTIVE


def test_seeding_again_adds_nothing_and_changes_nothing(demo):
    before = rules()
    out = seed()
    assert "Demo automation rules already present" in out
    assert rules() == before
    assert EmailTemplate.objects.filter(name="生日祝福").count() == 1


def test_an_admins_edits_survive_a_second_run_and_a_deleted_rule_comes_back(demo):
    reminder = Rule.objects.get(name="报价提醒")
    reminder.is_active = False
    reminder.save()
    delay = reminder.actions.get(kind="delay")
    delay.params = {"amount": 3, "unit": "days"}
    delay.save()
    template = EmailTemplate.objects.get(name="生日祝福")
    template.subject = "生日快乐"
    template.save()
    Rule.objects.filter(name="超时预警").delete()

    out = seed()

    assert "Demo automation rules added: 1 (1 active)." in out
    reminder.refresh_from_db()
    assert not reminder.is_active
    assert reminder.actions.get(kind="delay").params == {"amount": 3, "unit": "days"}
    assert EmailTemplate.objects.get(name="生日祝福").subject == "生日快乐"
    assert Rule.objects.filter(name="超时预警").count() == 1
    assert Rule.objects.count() == len(ACTIVE | INACTIVE)


def test_every_rule_is_stored_as_the_admin_would_save_it(demo_rules):
    for rule in Rule.objects.select_related("stage"):
        assert rule.trigger_params == clean_trigger(
            rule.record_type, rule.trigger, rule.trigger_params, stage=rule.stage
        ), rule.name
        assert rule.conditions == clean_conditions(rule.record_type, rule.conditions), rule.name
        actions = list(rule.actions.order_by("order", "id"))
        assert actions, rule.name
        for action in actions:
            assert action.params == clean_params(action.kind, rule.record_type, action.params), (
                rule.name,
                action.kind,
            )
        if rule.stage_id:
            assert rule.pipeline_id == rule.stage.pipeline_id
            assert rule.pipeline.kind == rule.record_type


def test_the_robots_sit_on_the_lead_pipelines_first_stage_and_on_quotation(demo_rules):
    leads = Pipeline.objects.get(kind="lead", name="线索")
    first = leads.stages.order_by("order").first()
    robots = Rule.objects.filter(stage=first)
    assert set(robots.values_list("name", flat=True)) == LEAD_ROBOTS
    quote = Rule.objects.select_related("stage__pipeline").get(name="报价提醒")
    assert (quote.stage.pipeline.name, quote.stage.name) == ("零售", "报价")
    assert [a.kind for a in quote.actions.order_by("order")] == ["delay", "notify", "create_task"]
    pool = Rule.objects.get(name="30天未跟进退回公海")
    assert pool.trigger_params == {"days": 30}
    assert [a.kind for a in pool.actions.all()] == ["release"]
    notice = Rule.objects.get(name="30天未跟进退回公海：提前3天提醒")
    assert notice.trigger_params == {"days": 27}
    assert "3 天后将退回公海" in notice.actions.get().params["title"]
    birthday = Rule.objects.get(name="联系人生日祝福")
    assert birthday.trigger_params == {"field": "birthday", "at": "09:00"}
    assert birthday.actions.get().params == {"template": "生日祝福", "to": "contact"}


def test_a_new_lead_is_assigned_in_turn_and_its_owner_gets_a_task_that_ends_with_the_stage(
    demo, django_capture_on_commit_callbacks
):
    manager = User.objects.get(username="zhangwei")
    team = set(User.objects.filter(department__name="销售一部").values_list("pk", flat=True))
    started = timezone.now()

    first = services.create_lead(
        lead=Lead(person_name="周先生", company_name="杭州周氏机电", phone="+8613911112222"),
        by=manager,
    )
    second = services.create_lead(
        lead=Lead(person_name="吴女士", company_name="宁波吴记贸易", phone="+8613911113333"),
        by=manager,
    )
    deliver_events(django_capture_on_commit_callbacks)

    first.refresh_from_db()
    second.refresh_from_db()
    assert {first.owner_id, second.owner_id} == team  # one each, in turn
    for lead in (first, second):
        task = Task.objects.get(subject_id=lead.pk, subject_type__model="lead")
        assert task.assignee_id == lead.owner_id and task.status == TaskStatus.OPEN
        assert lead.display_name in task.title
        assert started < task.due_at < started + timedelta(days=4)  # one working day
        runs = {run.rule.name: run for run in RuleRun.objects.filter(record_id=lead.pk)}
        assert runs["新线索自动分配"].status == RunStatus.DONE
        assert runs["新线索跟进任务"].status == RunStatus.DONE
        # The manager hears of it in two days, unless it has moved on.
        waiting = runs["线索两天未推进提醒经理"]
        assert waiting.status == RunStatus.WAITING
        later = ScheduledAction.objects.get(run=waiting, status=ScheduledStatus.PENDING)
        assert timedelta(days=2) <= later.due_at - started < timedelta(days=2, minutes=5)

    owner = User.objects.get(pk=first.owner_id)
    next_stage = first.pipeline.stages.filter(order__gt=first.stage.order).order_by("order")[0]
    services.move_to_stage(record=first, stage=next_stage, by=owner)
    deliver_events(django_capture_on_commit_callbacks)

    task = Task.objects.get(subject_id=first.pk, subject_type__model="lead")
    assert task.status == TaskStatus.DONE


def test_a_lead_entered_with_its_owner_keeps_it(demo_rules, django_capture_on_commit_callbacks):
    rep = User.objects.get(username="liuyang")
    lead = services.create_lead(
        lead=Lead(person_name="郑先生", phone="+8613911114444", owner=rep), by=rep
    )
    deliver_events(django_capture_on_commit_callbacks)
    lead.refresh_from_db()
    assert lead.owner == rep
    assert Task.objects.get(subject_id=lead.pk, subject_type__model="lead").assignee == rep
    assert (
        RuleRun.objects.get(record_id=lead.pk, rule__name="新线索自动分配").status
        == RunStatus.NOT_MATCHED
    )


def test_the_birthday_template_uses_only_placeholders_a_contact_has(demo_rules):
    template = EmailTemplate.objects.get(name="生日祝福")
    assert "{{ name }}" in template.subject
    action = RuleAction.objects.get(rule__name="联系人生日祝福")
    assert clean_params("send_email", "contact", action.params)  # checks the placeholders


def after_two_days() -> int:
    """The delayed work falls due (as two days later) and a worker runs it."""
    ScheduledAction.objects.filter(status=ScheduledStatus.PENDING).update(due_at=timezone.now())
    return run_due()


def test_the_manager_hears_only_of_leads_still_in_the_first_stage_two_days_on(
    demo_rules, django_capture_on_commit_callbacks
):
    manager = User.objects.get(username="zhangwei")
    stuck, moved = (
        services.create_lead(lead=Lead(person_name=name, phone=phone), by=manager)
        for name, phone in (("钱先生", "+8613911115555"), ("孙女士", "+8613911116666"))
    )
    deliver_events(django_capture_on_commit_callbacks)
    moved.refresh_from_db()
    next_stage = moved.pipeline.stages.filter(order__gt=moved.stage.order).order_by("order")[0]
    services.move_to_stage(record=moved, stage=next_stage, by=moved.owner)
    deliver_events(django_capture_on_commit_callbacks)

    after_two_days()

    checks = RuleRun.objects.filter(rule__name="线索两天未推进提醒经理")
    assert checks.get(record_id=stuck.pk).status == RunStatus.DONE
    assert checks.get(record_id=moved.pk).status == RunStatus.CANCELLED
    note = Notification.objects.get(rule__name="线索两天未推进提醒经理")
    assert (note.user, note.record_id) == (manager, stuck.pk)


def test_the_quote_reminder_reaches_the_owner_of_a_deal_still_in_quotation(
    demo, django_capture_on_commit_callbacks
):
    quote = Stage.objects.get(pipeline__name="零售", name="报价")
    evaluation = Stage.objects.get(pipeline__name="零售", name="评估")
    deals = list(
        Deal.objects.filter(stage__pipeline=quote.pipeline, stage__order__gt=quote.order)
        .filter(stage__kind="open", contact__isnull=False, amount__isnull=False)
        .exclude(expected_close_date=None)
        .select_related("owner")[:2]
    )
    assert len(deals) == 2
    for deal in deals:
        services.move_to_stage(record=deal, stage=quote, by=deal.owner)
    deliver_events(django_capture_on_commit_callbacks)
    waiting, moved_on = deals
    services.move_to_stage(record=moved_on, stage=evaluation, by=moved_on.owner)
    deliver_events(django_capture_on_commit_callbacks)

    after_two_days()

    reminders = RuleRun.objects.filter(rule__name="报价提醒")
    assert reminders.get(record_id=waiting.pk).status == RunStatus.DONE
    assert reminders.get(record_id=moved_on.pk).status == RunStatus.CANCELLED
    note = Notification.objects.get(rule__name="报价提醒", kind="rule")
    assert (note.user, note.record_id) == (waiting.owner, waiting.pk)
    # The task the rule gave the owner is under the bell too.
    assigned = Notification.objects.get(rule__name="报价提醒", kind="assignment")
    assert (assigned.user, assigned.title) == (waiting.owner, f"新待办：跟进报价：{waiting}")
    task = Task.objects.get(title__startswith="跟进报价：")
    assert task.title == f"跟进报价：{waiting}" and task.subject_id == waiting.pk
    assert task.assignee == waiting.owner and task.status == TaskStatus.OPEN
