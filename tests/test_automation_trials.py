"""Trying a rule before it acts: the trace of its conditions and what each action would
do on one record (writing nothing), the records it matches now as the viewer sees them,
the admin's form refusing a rule that could not mean what was typed, and asking before
it activates a rule that would act on many records at once."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from accounts.models import DataScope
from automation.models import ActionRun, Notification, Rule, RuleAction, RuleRun, ScheduledAction
from automation.rules import match_count, matching, try_on
from crm.models import Change, PoolEvent, Task

from .admin_forms import admin_errors, admin_page_data
from .factories import (
    ContactFactory,
    CustomerFactory,
    DepartmentFactory,
    DictionaryItemFactory,
    EmailTemplateFactory,
    TagFactory,
    UserFactory,
    crm_permissions,
    item,
    make_rule,
)

ADD = "/admin/automation/rule/add/"


@pytest.fixture
def team(org):
    """The reps see their own customers; the colleague manages 销售一部's."""
    permissions = crm_permissions(("view", "add", "change"))
    for name in ("owner", "outsider"):
        setattr(org, name, org.set_scope(getattr(org, name), DataScope.OWN, permissions))
    org.colleague = org.set_scope(org.colleague, DataScope.DEPARTMENT, permissions)
    return org


@pytest.fixture
def vip(db):
    return DictionaryItemFactory(dictionary__code="customer_level", code="vip", label="VIP")


def rows_written() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Task, Notification, Change, RuleRun, ActionRun, ScheduledAction, PoolEvent)
    }


# --- The trace of one record --------------------------------------------------------------------


def test_trying_a_rule_traces_each_condition_and_action_and_writes_nothing(team, vip, english):
    UserFactory(username="desk1", department=DepartmentFactory(name="分配组"))
    EmailTemplateFactory(name="问候", subject="{{ record }} 您好", body="…")
    rule = make_rule(
        "customer",
        "created",
        conditions={
            "match": "all",
            "conditions": [
                {"field": "level", "op": "ne", "value": "vip"},
                {
                    "match": "any",
                    "conditions": [
                        {"field": "tags", "op": "contains", "value": "重点"},
                        {"field": "name", "op": "contains", "value": "恒信"},
                    ],
                },
            ],
        },
        actions=[
            ("create_task", {"title": "回访 {{ record }}", "due": {"amount": 1, "unit": "days"}}),
            ("notify", {"title": "{{ record }}", "to": "owner"}),
            ("send_email", {"template": "问候", "to": "owner"}),
            ("set_field", {"field": "level", "value": "vip"}),
            ("add_tag", {"tag": "已回访"}),
            ("delay", {"amount": 2, "unit": "days"}),
            ("release", {}),
        ],
        active=False,
    )
    customer = CustomerFactory(
        owner=team.owner,
        name="上海恒信",
        level=item("customer_level", "b"),
        tags=[TagFactory(name="华东")],
    )
    before = rows_written()

    trial = try_on(rule, customer)

    assert trial.matched is True
    level, group = trial.trace
    assert (level["text"], level["actual"], level["ok"]) == (
        "Level does not equal VIP",
        "B – regular",
        True,
    )
    assert group["group"] == "any" and group["ok"] is True
    tags, name = group["conditions"]
    assert (tags["actual"], tags["ok"]) == ("华东", False)
    assert (name["actual"], name["ok"]) == ("上海恒信", True)
    task, note, email, field, tag, delay, release = trial.steps
    assert task.startswith("Would create the task “回访 上海恒信” for 王芳, due ")
    assert note == "Would notify 王芳: “上海恒信”."
    assert email == f"Would email “上海恒信 您好” to {team.owner.email}."
    assert field == "Would set Level to “VIP”."
    assert tag == "Would tag it “已回访”."
    assert delay == "Would wait 2 days, then go on if the record still matches."
    assert release == "Would return it to the public pool (owner now: 王芳)."
    assert rows_written() == before and mail.outbox == []
    customer.refresh_from_db()
    assert customer.owner == team.owner and customer.level.code == "b"


def test_a_record_that_does_not_match_says_which_condition_failed(team, vip):
    rule = make_rule(
        "customer", "created", conditions=[{"field": "level", "op": "ne", "value": "vip"}]
    )
    trial = try_on(rule, CustomerFactory(owner=team.owner, level=vip))
    assert trial.matched is False
    [level] = trial.trace
    assert (level["actual"], level["ok"]) == ("VIP", False)


def test_a_stage_robot_tried_on_a_deal_elsewhere_says_it_is_not_in_the_stage(team):
    from .factories import DealFactory, stage

    rule = make_rule("deal", "stage_entered", stage=stage("零售", "报价"), active=False)
    trial = try_on(rule, DealFactory(owner=team.owner))
    assert trial.matched is False and trial.trace[0]["actual"] == "意向"


# --- The records it matches now --------------------------------------------------------------


def test_the_match_preview_counts_and_lists_only_what_the_viewer_may_see(team):
    level_a = item("customer_level", "a")
    mine = CustomerFactory.create_batch(2, owner=team.owner, level=level_a)
    colleagues = CustomerFactory(owner=team.colleague, level=level_a)
    CustomerFactory(owner=team.owner, level=item("customer_level", "b"))
    CustomerFactory(owner=team.outsider, level=level_a)
    rule = make_rule(
        "customer",
        "created",
        conditions=[{"field": "level", "op": "eq", "value": "a"}],
        active=False,
    )
    assert set(matching(rule, team.owner)) == set(mine)
    assert match_count(rule, team.owner) == 2
    # The colleague manages 销售一部: the owner's and her own, not 销售二部's.
    assert set(matching(rule, team.colleague)) == {*mine, colleagues}
    assert match_count(rule, team.outsider) == 1
    assert match_count(rule, team.admin) == 4


# --- The admin's form ----------------------------------------------------------------------------


def rule_post(admin_client, *, actions=(), **fields) -> dict:
    """What the add page posts for a rule with these fields and actions."""
    data = admin_page_data(admin_client.get(ADD))
    data.update(
        {
            "name": "回访提醒",
            "record_type": "customer",
            "trigger": "created",
            "trigger_params": "{}",
            "conditions": "{}",
        }
    )
    for index, (kind, params) in enumerate(actions):
        data[f"actions-{index}-order"] = str(index)
        data[f"actions-{index}-kind"] = kind
        data[f"actions-{index}-params"] = json.dumps(params, ensure_ascii=False)
    data["actions-TOTAL_FORMS"] = str(max(len(actions), 1))
    for key, value in fields.items():
        data[key] = (
            json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        )
    return data


TASK = ("create_task", {"title": "回访 {{ record }}", "due": {"amount": 1, "unit": "days"}})


def test_the_admin_saves_a_rule_in_its_cleaned_form(admin_client, vip):
    data = rule_post(
        admin_client,
        actions=[TASK],
        trigger="field_changed",
        trigger_params={"field": "level", "to": "VIP"},
        conditions=[{"field": "owner", "op": "in", "value": "owner，colleague"}],
    )
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, admin_errors(response)
    rule = Rule.objects.get()
    assert rule.trigger_params == {"field": "level", "to": "vip"}
    assert rule.conditions == {
        "match": "all",
        "conditions": [{"field": "owner", "op": "in", "value": ["owner", "colleague"]}],
    }
    assert rule.actions.get().params["assignee"] == {"type": "owner"}


@pytest.mark.parametrize(
    ("fields", "actions", "where", "message"),
    [
        (
            {"conditions": [{"field": "levle", "op": "eq", "value": "vip"}]},
            [TASK],
            "conditions",
            "Unknown field “levle”.",
        ),
        (
            {"conditions": [{"field": "level", "op": "ne", "value": "viq"}]},
            [TASK],
            "conditions",
            "Level: ",
        ),
        (
            {"conditions": [{"field": "level", "op": "gt", "value": "vip"}]},
            [TASK],
            "conditions",
            "“greater than” does not apply to Level.",
        ),
        ({"conditions": "{not json"}, [TASK], "conditions", "Enter a valid JSON."),
        (
            {"trigger": "field_changed", "trigger_params": {"field": "level", "to": "viq"}},
            [TASK],
            "trigger_params",
            "Level: ",
        ),
        (
            {"trigger": "stage_entered"},
            [TASK],
            "trigger_params",
            "Only leads and deals have stages.",
        ),
        (
            {},
            [("create_task", {"due": {"amount": 1, "unit": "days"}})],
            "inlines",
            "Action 1 (Create a task): Give a title.",
        ),
        (
            {},
            [("set_field", {"field": "level", "value": "viq"})],
            "inlines",
            "Action 1 (Set a field): Level: ",
        ),
        ({}, [("move_stage", {"stage": 1})], "inlines", "does not apply to this record type"),
        (
            {},
            [("create_task", {"title": "回访", "due": "明天"})],
            "inlines",
            "Action 1 (Create a task): due: a whole number 0–3650 of hours/days.",
        ),
        ({}, [("notify", {"title": "回访", "to": ["owner"]})], "inlines", "to: one of owner"),
    ],
    ids=[
        "unknown-field",
        "typo-in-code",
        "wrong-operator",
        "bad-json",
        "trigger-typo",
        "stage-of-a-customer",
        "task-without-title",
        "set-field-typo",
        "action-of-another-type",
        "due-not-a-duration",
        "recipient-not-a-person",
    ],
)
def test_the_admin_refuses_a_wrong_rule_saying_why_and_saves_nothing(
    admin_client, vip, fields, actions, where, message
):
    response = admin_client.post(ADD, rule_post(admin_client, actions=actions, **fields))
    assert response.status_code == 200
    errors = admin_errors(response)
    assert any(message in text for text in errors.get(where, [])), errors
    assert not Rule.objects.exists() and not RuleAction.objects.exists()


def test_activating_a_rule_that_matches_many_records_asks_first(admin_client, org, settings):
    settings.CRM_AUTOMATION_CONFIRM_OVER = 2
    CustomerFactory.create_batch(3, owner=org.owner, level=item("customer_level", "a"))
    data = rule_post(
        admin_client,
        actions=[TASK],
        trigger="schedule",
        trigger_params={"at": "09:00"},
        conditions=[{"field": "level", "op": "eq", "value": "a"}],
        is_active="on",
    )
    response = admin_client.post(ADD, data)
    assert response.status_code == 200
    [asked] = admin_errors(response)["confirm_activation"]
    assert "match 3 existing records" in asked
    assert not Rule.objects.exists()

    data["confirm_activation"] = "on"
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, admin_errors(response)
    rule = Rule.objects.get()
    assert rule.is_active and rule.actions.count() == 1


def test_a_rule_matching_few_records_activates_without_asking(admin_client, org, settings):
    settings.CRM_AUTOMATION_CONFIRM_OVER = 2
    CustomerFactory.create_batch(2, owner=org.owner)
    response = admin_client.post(ADD, rule_post(admin_client, actions=[TASK], is_active="on"))
    assert response.status_code == 302, admin_errors(response)
    assert Rule.objects.get().is_active


# --- The admin's try page -------------------------------------------------------------------------


def test_the_try_page_shows_the_matches_and_the_trace_of_a_record(admin_client, org, vip):
    rule = make_rule(
        "contact",
        "anniversary",
        params={"at": "09:00"},
        conditions=[{"field": "do_not_contact", "op": "eq", "value": False}],
        actions=[("notify", {"title": "{{ record }} 生日", "to": "owner"})],
        active=False,
    )
    contact = ContactFactory(name="陈静", customer=CustomerFactory(owner=org.owner))
    ContactFactory(name="周敏", do_not_contact=True)
    before = rows_written()
    page = admin_client.get(f"/admin/automation/rule/{rule.pk}/try/", {"record": contact.pk})
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 record you may see matches." in text
    assert "陈静" in text and "Would notify 王芳: “陈静 生日”." in text
    assert "Nothing was changed." in text
    assert rows_written() == before


@pytest.mark.parametrize("garbage", ["１２", "99999999999999999999", "-1", "1e3", "<b>"])
def test_the_try_page_answers_garbage_record_ids_without_failing(admin_client, org, garbage):
    rule = make_rule("customer", "created", active=False)
    page = admin_client.get(f"/admin/automation/rule/{rule.pk}/try/", {"record": garbage})
    assert page.status_code == 200
    assert "that you may see" in page.content.decode()


def test_the_try_page_refuses_a_nul_character_like_every_page(admin_client, org):
    rule = make_rule("customer", "created", active=False)
    page = admin_client.get(f"/admin/automation/rule/{rule.pk}/try/", {"record": "\x00"})
    assert page.status_code == 400


@pytest.mark.parametrize("garbage", ["１２", "99999999999999999999", "0", "x"])
def test_the_try_page_of_a_garbage_rule_id_is_not_found(admin_client, garbage):
    assert admin_client.get(f"/admin/automation/rule/{garbage}/try/").status_code == 404
