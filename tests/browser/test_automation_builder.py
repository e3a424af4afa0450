"""The rule builder in Django admin (automation/static/automation/builder.js): an admin
makes a rule for big deals without writing JSON — a trigger setting, conditions with a
group, a task and a notification through their inputs — and what is saved is the JSON
the form checks; a saved rule opens with its conditions, trigger and actions shown in
the builder's inputs."""

import re

import pytest
from playwright.sync_api import expect

from accounts.demo import seed_organisation
from accounts.models import User
from automation.models import Rule, RuleAction

from .conftest import loads, screenshot, sign_in

pytestmark = pytest.mark.browser

CONDITIONS = {
    "match": "all",
    "conditions": [
        {"field": "amount", "op": "gt", "value": "1000000.00"},
        {
            "match": "any",
            "conditions": [
                {"field": "status", "op": "eq", "value": "open"},
                {"field": "owner", "op": "in", "value": ["wangfang", "zhangwei"]},
            ],
        },
    ],
}
TASK = {
    "title": "跟进大单 {{ record }}",
    "notes": "",
    "assignee": {"type": "user", "user": "wangfang"},
    "due": {"amount": 2, "unit": "days"},
    "working_hours": False,
    "complete_on_leave": True,
}


def condition_rows(page):
    return page.locator(".field-conditions [data-condition]")


def test_an_admin_builds_a_rule_without_writing_json(page):
    seed_organisation(reset_passwords=True)
    sign_in(page, "admin")
    with loads(page):
        page.goto("/admin/automation/rule/add/")
    # The JSON textareas are folded away under the builder.
    expect(page.locator("#id_conditions")).to_be_hidden()
    page.locator("#id_name").fill("大单跟进")
    page.locator("#id_record_type").select_option("deal")
    page.locator("#id_trigger").select_option("time_in_stage")
    trigger = page.locator(".field-trigger_params")
    trigger.locator("[data-param=days]").fill("3")

    # amount > 1,000,000 and (status is open or the owner is 王芳 or 张伟)
    conditions = page.locator(".field-conditions")
    conditions.locator(".rb-add-condition").last.click()
    amount = condition_rows(page).nth(0)
    amount.locator(".rb-field").select_option("amount")
    amount.locator(".rb-op").select_option("gt")
    amount.locator(".rb-val").fill("1000000")
    conditions.locator(".rb-add-group").click()
    group = conditions.locator("[data-group]")
    expect(group.locator(".rb-match-select")).to_have_value("any")
    status = group.locator("[data-condition]").nth(0)
    status.locator(".rb-field").select_option("status")
    expect(status.locator(".rb-op")).to_have_value("eq")
    status.locator(".rb-val").select_option("open")
    group.locator(".rb-add-condition").click()
    owner = group.locator("[data-condition]").nth(1)
    owner.locator(".rb-field").select_option("owner")
    # Only the operators of a person field are offered.
    ops = owner.locator(".rb-op option").evaluate_all("options => options.map(o => o.value)")
    assert ops == ["eq", "ne", "in", "not_in", "empty", "not_empty"]
    owner.locator(".rb-op").select_option("in")
    owner.locator(".rb-val").select_option(["wangfang", "zhangwei"])
    # "is empty" takes no value.
    group.locator(".rb-add-condition").click()
    empty = group.locator("[data-condition]").nth(2)
    empty.locator(".rb-field").select_option("title")
    empty.locator(".rb-op").select_option("empty")
    expect(empty.locator(".rb-val")).to_have_count(0)
    empty.locator(".rb-remove").click()
    expect(group.locator("[data-condition]")).to_have_count(2)

    # A task for 王芳, due in 2 days, completed when the deal leaves its stage.
    task = page.locator("#actions-0")
    expect(task.locator("#id_actions-0-kind")).to_have_value("create_task")
    task.locator("[data-param=title]").fill("跟进大单 {{ record }}")
    task.locator("[data-param=assignee]").select_option("user")
    task.locator("[data-param='assignee.user']").select_option("wangfang")
    task.locator("[data-param='due.amount']").fill("2")
    task.locator("[data-param='due.unit']").select_option("days")
    task.locator("[data-param=working_hours]").uncheck()
    task.locator("[data-param=complete_on_leave]").check()

    # A second action, added with the inline's own link: notify the manager.
    page.locator("#actions-group .add-row a").click()
    notify = page.locator("#actions-1")
    notify.locator("#id_actions-1-kind").select_option("notify")
    notify.locator("[data-param=title]").fill("{{ record }} 金额超过一百万")
    notify.locator("[data-param=to]").select_option("manager")
    screenshot(page, "rule-builder-1-filled")

    with loads(page, re.compile(r"/admin/automation/rule/$")):
        page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()
    rule = Rule.objects.get(name="大单跟进")
    assert rule.record_type == "deal" and rule.trigger == "time_in_stage"
    assert rule.trigger_params == {"hours": 0, "days": 3}
    assert rule.conditions == CONDITIONS
    actions = list(rule.actions.order_by("order", "id").values_list("kind", "params"))
    assert actions == [
        ("create_task", TASK),
        ("notify", {"title": "{{ record }} 金额超过一百万", "body": "", "to": {"type": "manager"}}),
    ]


def test_a_saved_rule_opens_in_the_builder(page):
    seed_organisation(reset_passwords=True)
    rule = Rule.objects.create(
        name="大单跟进",
        record_type="deal",
        trigger="field_changed",
        trigger_params={"field": "status", "to": "won"},
        conditions=CONDITIONS,
        created_by=User.objects.get(username="admin"),
    )
    RuleAction.objects.create(rule=rule, order=0, kind="create_task", params=TASK)
    RuleAction.objects.create(
        rule=rule, order=1, kind="delay", params={"amount": 30, "unit": "minutes"}
    )
    sign_in(page, "admin")
    with loads(page):
        page.goto(f"/admin/automation/rule/{rule.pk}/change/")

    trigger = page.locator(".field-trigger_params")
    expect(trigger.locator("[data-param=field]")).to_have_value("status")
    expect(trigger.locator(".rb-val")).to_have_value("won")

    rows = condition_rows(page)
    expect(rows).to_have_count(3)
    expect(page.locator(".field-conditions .rb-match-select").first).to_have_value("all")
    expect(rows.nth(0).locator(".rb-field")).to_have_value("amount")
    expect(rows.nth(0).locator(".rb-op")).to_have_value("gt")
    expect(rows.nth(0).locator(".rb-val")).to_have_value("1000000.00")
    group = page.locator(".field-conditions [data-group]")
    expect(group.locator(".rb-match-select")).to_have_value("any")
    expect(rows.nth(1).locator(".rb-val")).to_have_value("open")
    expect(rows.nth(2).locator(".rb-op")).to_have_value("in")
    chosen = rows.nth(2).locator(".rb-val option:checked")
    assert chosen.evaluate_all("options => options.map(o => o.value)") == [
        "wangfang",
        "zhangwei",
    ]

    task = page.locator("#actions-0")
    expect(task.locator("[data-param=title]")).to_have_value("跟进大单 {{ record }}")
    expect(task.locator("[data-param=assignee]")).to_have_value("user")
    expect(task.locator("[data-param='assignee.user']")).to_have_value("wangfang")
    expect(task.locator("[data-param='due.amount']")).to_have_value("2")
    expect(task.locator("[data-param=working_hours]")).not_to_be_checked()
    expect(task.locator("[data-param=complete_on_leave]")).to_be_checked()
    delay = page.locator("#actions-1")
    expect(delay.locator("[data-param=amount]")).to_have_value("30")
    expect(delay.locator("[data-param=unit]")).to_have_value("minutes")
    screenshot(page, "rule-builder-2-loaded")

    # Editing the JSON by hand redraws the builder; saving unchanged keeps the rule.
    page.locator(".field-conditions .rb-json summary").click()
    page.locator("#id_conditions").fill('{"match": "any", "conditions": []}')
    expect(page.locator(".field-conditions .rb-match-select").first).to_have_value("any")
    expect(rows).to_have_count(0)
    with loads(page, re.compile(r"/admin/automation/rule/$")):
        page.locator("input[name=_save]").click()
    rule.refresh_from_db()
    assert rule.conditions == {"match": "any", "conditions": []}
    assert rule.trigger_params == {"field": "status", "to": "won"}
    assert list(rule.actions.order_by("order").values_list("params", flat=True)) == [
        TASK,
        {"amount": 30, "unit": "minutes"},
    ]


def test_without_javascript_the_json_is_edited_as_before(browser, live_server):
    seed_organisation(reset_passwords=True)
    context = browser.new_context(
        java_script_enabled=False, locale="zh-CN", base_url=live_server.url
    )
    try:
        page = context.new_page()
        page.goto("/accounts/login/")
        page.get_by_label("用户名").fill("admin")
        page.get_by_label("密码").fill("demo1234")
        page.get_by_role("button", name="登录").click()
        page.goto("/admin/automation/rule/add/")
        expect(page.locator("#id_conditions")).to_be_visible()
        expect(page.locator("#id_trigger_params")).to_be_visible()
        expect(page.locator(".rb-builder")).to_have_count(0)
    finally:
        context.close()
