"""Automation actions: what each built-in action does to a record when its rule runs —
through the record type's services, as the rule's system actor — and what it does when
it cannot (skipped with the reason, or failed with the message a form would give)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone, translation

from accounts.models import DataScope
from automation.actions import add_working_time, manager_of
from automation.engine import run_due
from automation.models import (
    ActionRun,
    ActionStatus,
    Notification,
    RuleRun,
    RunStatus,
    ScheduledAction,
    ScheduledStatus,
)
from crm.models import Change, PoolEvent, Task, TaskStatus
from pipelines import services
from pipelines.models import Deal, Lead

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    DepartmentFactory,
    DictionaryItemFactory,
    EmailTemplateFactory,
    LeadFactory,
    RoleFactory,
    TaskFactory,
    UserFactory,
    crm_permissions,
    deliver_events,
    make_rule,
    run_rule,
    stage,
)

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def team(org, settings):
    """The org's reps (销售代表) may work on every record type; 张经理 manages 销售部
    (a department-wide role in the parent of the owner's department)."""
    settings.TIME_ZONE = "Asia/Shanghai"
    org.rep_role.permissions = crm_permissions(("view", "add", "change"), types=TYPES)
    org.rep_role.save()
    boss_role = RoleFactory(name="销售经理", data_scope=DataScope.DEPARTMENT_TREE)
    org.manager = UserFactory(
        username="manager", name="张经理", department=org.sales, role=boss_role
    )
    return org


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    return lambda: deliver_events(django_capture_on_commit_callbacks)


def task_rule(record_type="customer", **settings):
    settings.setdefault("title", "跟进 {{ record }}")
    settings.setdefault("due", {"amount": 2, "unit": "days"})
    return make_rule(record_type, "created", actions=[("create_task", settings)])


def quote_deal(owner, **kwargs):
    contact = ContactFactory(customer=CustomerFactory(owner=owner), email="buyer@example.com")
    kwargs.setdefault("amount", Decimal("50000"))
    kwargs.setdefault("expected_close_date", date(2027, 1, 1))
    return DealFactory(owner=owner, customer=contact.customer, contact=contact, **kwargs)


# --- Create a task ------------------------------------------------------------------------


def test_a_task_for_the_owner_due_in_two_days(team):
    rule = task_rule()
    customer = CustomerFactory(owner=team.owner, name="上海恒信")
    before = timezone.now()
    run = run_rule(rule, customer)
    after = timezone.now()
    assert run.status == RunStatus.DONE
    task = Task.objects.get()
    assert (task.title, task.assignee, task.customer) == ("跟进 上海恒信", team.owner, customer)
    assert before + timedelta(days=2) <= task.due_at <= after + timedelta(days=2)
    done = ActionRun.objects.get(run=run)
    assert done.object_id == task.pk and done.status == ActionStatus.DONE
    created = Change.objects.get(record_id=task.pk, kind="created")
    assert (created.actor_type, created.actor_id, created.actor_name) == (
        "rule",
        rule.pk,
        rule.name,
    )


def test_a_task_due_in_hours(team):
    run_rule(task_rule(due={"amount": 4, "unit": "hours"}), CustomerFactory(owner=team.owner))
    due = Task.objects.get().due_at
    assert abs(due - (timezone.now() + timedelta(hours=4))) < timedelta(minutes=1)


def test_a_task_for_the_owners_manager(team):
    run_rule(task_rule(assignee={"type": "manager"}), CustomerFactory(owner=team.owner))
    assert Task.objects.get().assignee == team.manager


def test_the_manager_is_the_nearest_department_wide_role_at_or_above_the_owner(team):
    assert manager_of(team.owner) == team.manager
    assert manager_of(team.sub_member) == team.manager
    lead_role = RoleFactory(data_scope=DataScope.DEPARTMENT)
    team_lead = UserFactory(department=team.team1, role=lead_role)
    assert manager_of(team.owner) == team_lead
    assert manager_of(team.sub_member) == team_lead  # 华东 is under 销售一部
    assert manager_of(team.outsider) == team.manager
    assert manager_of(team.manager) is None  # nobody above 销售部's manager


def test_a_task_for_a_named_user(team):
    run_rule(
        task_rule(assignee={"type": "user", "user": "colleague"}), CustomerFactory(owner=team.owner)
    )
    assert Task.objects.get().assignee == team.colleague


def test_a_task_for_the_role_in_the_owners_department_goes_to_the_least_busy(team):
    TaskFactory.create_batch(2, assignee=team.owner)
    rule = task_rule(assignee={"type": "role", "role": "销售代表"})
    run_rule(rule, CustomerFactory(owner=team.owner, name="甲"))
    assert Task.objects.get(title="跟进 甲").assignee == team.colleague  # not 刘洋 of 销售二部


def test_nobody_to_give_the_task_to_skips_it_with_the_reason(team, settings):
    settings.LANGUAGE_CODE = "en"  # the language the engine writes its log in
    run = run_rule(task_rule(assignee={"type": "manager"}), CustomerFactory(owner=team.manager))
    assert run.status == RunStatus.DONE
    skipped = ActionRun.objects.get(run=run)
    assert skipped.status == ActionStatus.SKIPPED
    assert skipped.result == "No task: nobody to give it to (the owner's manager)."
    assert not Task.objects.exists()


# --- Working hours and time zones -----------------------------------------------------------


def test_working_hours_carry_over_the_weekend(team):
    friday_5pm = datetime(2025, 6, 6, 17, 0, tzinfo=SHANGHAI)
    assert friday_5pm.isoweekday() == 5
    assert add_working_time(friday_5pm, hours=2) == datetime(2025, 6, 9, 10, 0, tzinfo=SHANGHAI)
    assert add_working_time(friday_5pm, days=1) == datetime(2025, 6, 9, 17, 0, tzinfo=SHANGHAI)
    saturday = datetime(2025, 6, 7, 11, 0, tzinfo=SHANGHAI)
    assert add_working_time(saturday, hours=3) == datetime(2025, 6, 9, 12, 0, tzinfo=SHANGHAI)
    # One hour on Friday, nine on Monday (09:00–18:00), one on Tuesday.
    assert add_working_time(friday_5pm, hours=11) == datetime(2025, 6, 10, 10, 0, tzinfo=SHANGHAI)


def test_working_hours_may_run_to_midnight(team, settings):
    settings.CRM_WORKING_HOURS = (8, 24)
    settings.CRM_WORKING_DAYS = (1, 2, 3, 4, 5, 6, 7)
    saturday_11pm = datetime(2025, 6, 7, 23, 0, tzinfo=SHANGHAI)
    assert add_working_time(saturday_11pm, hours=2) == datetime(2025, 6, 8, 9, 0, tzinfo=SHANGHAI)
    assert add_working_time(saturday_11pm, days=1) == datetime(2025, 6, 8, 23, 0, tzinfo=SHANGHAI)


def test_working_hours_are_the_crm_time_zones_while_moments_are_stored_in_utc(team, settings):
    friday_5pm_in_shanghai = datetime(2025, 6, 6, 9, 0, tzinfo=UTC)
    monday_10am = add_working_time(friday_5pm_in_shanghai, hours=2)
    assert monday_10am == datetime(2025, 6, 9, 2, 0, tzinfo=UTC)
    assert monday_10am.astimezone(SHANGHAI).hour == 10
    settings.TIME_ZONE = "UTC"  # 09:00 UTC on a Friday is within a UTC working day
    assert add_working_time(friday_5pm_in_shanghai, hours=2) == datetime(
        2025, 6, 6, 11, 0, tzinfo=UTC
    )


def test_a_task_due_in_one_working_day(team):
    rule = task_rule(due={"amount": 1, "unit": "days"}, working_hours=True)
    before = timezone.now()
    run_rule(rule, CustomerFactory(owner=team.owner))
    after = timezone.now()
    due = Task.objects.get().due_at
    assert add_working_time(before, days=1) <= due <= add_working_time(after, days=1)
    assert timezone.localtime(due).isoweekday() <= 5


# --- A task completed when the record leaves the stage -----------------------------------------


def test_a_stage_task_completes_when_the_deal_leaves_the_stage_and_not_before(team, deliver):
    quote = stage("零售", "报价")
    make_rule(
        "deal",
        "stage_entered",
        stage=quote,
        actions=[
            (
                "create_task",
                {
                    "title": "给 {{ customer }} 发报价",
                    "due": {"amount": 1, "unit": "days"},
                    "complete_on_leave": True,
                },
            )
        ],
    )
    deal = quote_deal(team.owner)
    services.move_to_stage(record=deal, stage=quote, by=team.owner)
    deliver()
    task = Task.objects.get()
    assert task.status == TaskStatus.OPEN and task.title == f"给 {deal.customer} 发报价"
    deal.amount = Decimal("60000")
    services.update_deal(deal=deal, by=team.owner)
    deliver()
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN
    services.move_to_stage(record=deal, stage=stage("零售", "评估"), by=team.owner)
    deliver()
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    completed = Change.objects.get(record_id=task.pk, kind="task_completed")
    assert completed.actor_type == "rule"


# --- Assign the owner -----------------------------------------------------------------------


def test_assign_a_customer_to_a_user(team):
    rule = make_rule(
        "customer", "created", actions=[("assign_owner", {"to": "user", "user": "colleague"})]
    )
    customer = CustomerFactory(owner=team.owner)
    run = run_rule(rule, customer)
    customer.refresh_from_db()
    assert run.status == RunStatus.DONE and customer.owner == team.colleague
    transferred = Change.objects.get(record_id=customer.pk, kind="transferred")
    assert transferred.actor_type == "rule" and transferred.fields["owner"] == [
        team.owner.pk,
        team.colleague.pk,
    ]


@pytest.fixture
def desk(team):
    """A department of three people new leads are shared out to."""
    desk = DepartmentFactory(name="线索分配组", parent=team.sales)
    team.desk = [
        UserFactory(username=f"desk{n}", department=desk, role=team.rep_role) for n in (1, 2, 3)
    ]
    return team


def test_round_robin_cycles_through_the_department_in_order_across_runs(desk):
    rule = make_rule(
        "lead",
        "created",
        actions=[("assign_owner", {"to": "round_robin", "department": "线索分配组"})],
    )
    leads = LeadFactory.create_batch(4, owner=None)
    for lead in leads:
        run_rule(rule, lead)
    owners = [Lead.objects.get(pk=lead.pk).owner for lead in leads]
    assert owners == [*desk.desk, desk.desk[0]]


def test_assign_to_whoever_has_the_fewest_open_records(desk):
    first, second, third = desk.desk
    LeadFactory.create_batch(2, owner=first)
    LeadFactory(owner=third)
    LeadFactory.create_batch(3, owner=second, stage=stage("线索", "无效线索"))  # closed
    rule = make_rule(
        "lead", "created", actions=[("assign_owner", {"to": "fewest", "department": "线索分配组"})]
    )
    lead = LeadFactory(owner=None)
    run_rule(rule, lead)
    lead.refresh_from_db()
    assert lead.owner == second


# --- Set a field --------------------------------------------------------------------------


def test_set_a_field_stores_the_value_in_the_records_history_as_the_rule(team, client):
    vip = DictionaryItemFactory(dictionary__code="customer_level", code="vip", label="VIP")
    rule = make_rule(
        "customer",
        "created",
        name="升级 VIP",
        actions=[("set_field", {"field": "level", "value": "VIP"})],
    )
    assert rule.actions.get().params == {"field": "level", "value": "vip"}  # kept by code
    customer = CustomerFactory(owner=team.owner)
    run = run_rule(rule, customer)
    customer.refresh_from_db()
    assert run.status == RunStatus.DONE and customer.level == vip
    change = Change.objects.get(record_id=customer.pk, kind="updated")
    assert change.fields["level"] == [None, vip.pk] and change.actor_name == "升级 VIP"
    client.force_login(team.owner)
    page = client.get(f"/customers/{customer.pk}/history/")
    assert "自动化规则「升级 VIP」" in page.content.decode()


def test_a_set_field_rule_survives_its_items_label_being_renamed(team):
    vip = DictionaryItemFactory(dictionary__code="customer_level", code="vip", label="VIP")
    rule = make_rule(
        "customer", "created", actions=[("set_field", {"field": "level", "value": "VIP"})]
    )
    vip.label = "钻石客户"
    vip.save()
    customer = CustomerFactory(owner=team.owner)
    assert run_rule(rule, customer).status == RunStatus.DONE
    customer.refresh_from_db()
    assert customer.level == vip


def test_set_a_custom_field_to_a_person_and_a_date(team):
    from .factories import custom_field

    custom_field("manager", "user", label="客户经理")
    custom_field("signed", "date", label="签约日期")
    rule = make_rule(
        "customer",
        "created",
        actions=[
            ("set_field", {"field": "cf_manager", "value": "李娜"}),
            ("set_field", {"field": "cf_signed", "value": "2026年3月1日"}),
        ],
    )
    assert [a.params["value"] for a in rule.actions.order_by("order")] == [
        "colleague",
        "2026-03-01",
    ]
    customer = CustomerFactory(owner=team.owner)
    run_rule(rule, customer)
    customer.refresh_from_db()
    assert customer.custom == {"manager": team.colleague.pk, "signed": "2026-03-01"}


def test_set_a_field_refuses_a_value_the_field_cannot_take_when_the_rule_is_saved(team, english):
    with pytest.raises(ValidationError) as refused:
        make_rule("deal", "created", actions=[("set_field", {"field": "amount", "value": "-5"})])
    assert "greater than or equal to 0" in refused.value.messages[0]
    with pytest.raises(ValidationError):
        make_rule("deal", "created", actions=[("set_field", {"field": "owner", "value": "owner"})])


@override_settings(CRM_AUTOMATION_MAX_ATTEMPTS=2)
def test_a_value_the_record_refuses_fails_the_run_with_the_forms_message(team, settings):
    rule = make_rule(
        "lead", "created", actions=[("set_field", {"field": "person_name", "value": ""})]
    )
    lead = LeadFactory(owner=team.owner, person_name="张三", company_name="", phone="")
    with translation.override(settings.LANGUAGE_CODE):
        edited = Lead.objects.get(pk=lead.pk)
        edited.person_name = ""
        with pytest.raises(ValidationError) as form_says:
            services.update_lead(lead=edited, by=team.owner)
    message = " ".join(form_says.value.messages)

    run = run_rule(rule, lead)
    row = ScheduledAction.objects.get(run=run)
    assert (row.status, row.attempts, row.last_error) == (ScheduledStatus.PENDING, 1, message)
    assert row.due_at > timezone.now()  # retried later
    ScheduledAction.objects.filter(pk=row.pk).update(due_at=timezone.now())
    run_due()
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, message)
    assert Lead.objects.get(pk=lead.pk).person_name == "张三"


# --- Move the stage ---------------------------------------------------------------------------


def test_move_a_deal_to_a_stage_through_the_stage_service(team):
    quote = stage("零售", "报价")
    rule = make_rule("deal", "created", actions=[("move_stage", {"stage": quote.pk})])
    deal = quote_deal(team.owner)
    run = run_rule(rule, deal)
    deal.refresh_from_db()
    assert run.status == RunStatus.DONE and deal.stage == quote
    moved = Change.objects.get(record_id=deal.pk, kind="stage_moved")
    assert moved.actor_type == "rule" and moved.fields["stage"][1] == quote.pk


@override_settings(CRM_AUTOMATION_MAX_ATTEMPTS=1)
def test_a_stage_needing_a_missing_field_fails_with_the_refusal(team, settings):
    quote = stage("零售", "报价")
    rule = make_rule("deal", "created", actions=[("move_stage", {"stage": quote.pk})])
    deal = DealFactory(owner=team.owner)  # no contact, no amount
    with (
        translation.override(settings.LANGUAGE_CODE),
        pytest.raises(services.StageMoveRefused) as refused,
    ):
        services.move_to_stage(record=Deal.objects.get(pk=deal.pk), stage=quote, by=team.owner)
    run = run_rule(rule, deal)
    assert run.status == RunStatus.FAILED
    assert run.error == " ".join(refused.value.messages)
    assert Deal.objects.get(pk=deal.pk).stage != quote


# --- Tags and the public pool -----------------------------------------------------------------


def test_add_a_tag_once(team):
    rule = make_rule("customer", "created", actions=[("add_tag", {"tag": "重点客户"})])
    customer = CustomerFactory(owner=team.owner)
    run_rule(rule, customer)
    second = run_rule(rule, customer)
    assert list(customer.tags.values_list("name", flat=True)) == ["重点客户"]
    assert ActionRun.objects.get(run=second).status == ActionStatus.SKIPPED


def test_release_a_customer_to_the_public_pool(team):
    rule = make_rule(
        "customer",
        "no_activity",
        params={"days": 30},
        actions=[("release", {"reason": "30 天未跟进"})],
    )
    customer = CustomerFactory(owner=team.owner)
    run = run_rule(rule, customer)
    customer.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert customer.owner is None and customer.released_at is not None
    pooled = PoolEvent.objects.get(customer=customer)
    assert (pooled.action, pooled.reason) == (PoolEvent.Action.RELEASE, "30 天未跟进")


# --- Email --------------------------------------------------------------------------------------


def test_an_email_to_the_contact_with_its_placeholders_filled(team, settings):
    settings.CRM_SITE_NAME = "恒信 CRM"
    EmailTemplateFactory(
        name="生日祝福",
        subject="{{ record }}，生日快乐",
        body="{{ customer }} 的 {{ record }}：祝您生日快乐！— {{ site }}",
    )
    rule = make_rule("contact", "created", actions=[("send_email", {"template": "生日祝福"})])
    contact = ContactFactory(
        name="陈静",
        email="chen@example.com",
        customer=CustomerFactory(owner=team.owner, name="恒信"),
    )
    run = run_rule(rule, contact)
    assert run.status == RunStatus.DONE
    [sent] = mail.outbox
    assert (sent.to, sent.subject) == (["chen@example.com"], "陈静，生日快乐")
    assert sent.body == "恒信 的 陈静：祝您生日快乐！— 恒信 CRM"
    assert ActionRun.objects.get(run=run).status == ActionStatus.DONE


def test_no_email_to_a_contact_marked_do_not_contact(team, settings):
    settings.LANGUAGE_CODE = "en"
    EmailTemplateFactory(name="生日祝福")
    rule = make_rule("contact", "created", actions=[("send_email", {"template": "生日祝福"})])
    contact = ContactFactory(name="陈静", email="chen@example.com", do_not_contact=True)
    run = run_rule(rule, contact)
    assert run.status == RunStatus.DONE and mail.outbox == []
    skipped = ActionRun.objects.get(run=run)
    assert skipped.status == ActionStatus.SKIPPED
    assert skipped.result == "Not sent: 陈静 is marked do not contact."


def test_a_deals_email_goes_to_its_contact_and_never_to_a_do_not_contact_one(team):
    EmailTemplateFactory(name="报价跟进", subject="关于 {{ record }}", body="金额 {{ amount }}")
    rule = make_rule("deal", "created", actions=[("send_email", {"template": "报价跟进"})])
    deal = quote_deal(team.owner, title="年度采购")
    run_rule(rule, deal)
    assert [m.to for m in mail.outbox] == [["buyer@example.com"]]
    assert mail.outbox[0].subject == "关于 年度采购"
    deal.contact.do_not_contact = True
    deal.contact.save()
    run_rule(rule, Deal.objects.get(pk=deal.pk))
    assert len(mail.outbox) == 1


# --- Notifications ----------------------------------------------------------------------------


def test_notify_the_owners_manager(team):
    rule = make_rule(
        "deal",
        "created",
        actions=[
            (
                "notify",
                {"title": "{{ record }} 需要关注", "body": "负责人：{{ owner }}", "to": "manager"},
            )
        ],
    )
    deal = quote_deal(team.owner, title="年度采购")
    run_rule(rule, deal)
    note = Notification.objects.get()
    assert (note.user, note.title, note.body) == (team.manager, "年度采购 需要关注", "负责人：王芳")
    assert (note.record_type, note.record_id, note.rule) == ("deal", deal.pk, rule)


# --- Delays -------------------------------------------------------------------------------------


@pytest.fixture
def reminder(team):
    """When a deal enters 报价: after 2 days, remind the manager (if it is still there)."""
    quote = stage("零售", "报价")
    return make_rule(
        "deal",
        "stage_entered",
        stage=quote,
        conditions=[{"field": "amount", "op": "gt", "value": "10000"}],
        actions=[
            ("delay", {"amount": 2, "unit": "days"}),
            ("notify", {"title": "{{ record }} 报价已两天", "to": {"type": "manager"}}),
        ],
    )


def enter_quote(team, deliver):
    deal = quote_deal(team.owner)
    services.move_to_stage(record=deal, stage=stage("零售", "报价"), by=team.owner)
    deliver()
    return deal, RuleRun.objects.get()


def after_the_delay() -> int:
    ScheduledAction.objects.filter(status="pending").update(due_at=timezone.now())
    return run_due()


def test_the_actions_after_a_delay_wait_then_run_if_the_record_still_matches(
    team, reminder, deliver
):
    _deal, run = enter_quote(team, deliver)
    assert run.status == RunStatus.WAITING and not Notification.objects.exists()
    waiting = ScheduledAction.objects.get(run=run, status="pending")
    assert waiting.step == 1
    assert waiting.due_at - timezone.now() > timedelta(days=1, hours=23)
    assert run_due() == 0  # not yet
    after_the_delay()
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert Notification.objects.get().user == team.manager


def test_a_delayed_run_is_cancelled_when_the_deal_has_moved_on(team, reminder, deliver, settings):
    settings.LANGUAGE_CODE = "en"
    deal, run = enter_quote(team, deliver)
    services.move_to_stage(record=deal, stage=stage("零售", "评估"), by=team.owner)
    deliver()
    after_the_delay()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.error == "Cancelled after the delay: the record no longer matches."
    assert not Notification.objects.exists()


def test_a_delayed_run_is_cancelled_when_its_conditions_no_longer_hold(team, reminder, deliver):
    deal, run = enter_quote(team, deliver)
    deal.amount = Decimal("8000")
    services.update_deal(deal=deal, by=team.owner)
    deliver()
    after_the_delay()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert not Notification.objects.exists()
