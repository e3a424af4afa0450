"""Automation plugged into the lower apps' extension points: each stage of a pipeline's
settings lists its robots and offers robot templates that open the rule form pre-filled;
rules (with their actions and email templates) move between systems in export_config /
import_config by names, never ids, refused whole when a name does not resolve; the
impact view before a custom field or a dictionary item is deactivated lists the rules
that use it; the configuration document lists the rules."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError
from django.urls import reverse
from django.utils import translation

from automation.actions import clean_params
from automation.admin import ROBOT_TEMPLATES
from automation.config import export_params
from automation.models import EmailTemplate, Rule, RuleAction
from crm.fields import impact
from crm.models import ConfigChange, CustomField, Dictionary, DictionaryItem
from pipelines.models import Pipeline, Stage

from .admin_forms import admin_errors, admin_page_data
from .factories import (
    EmailTemplateFactory,
    PipelineFactory,
    StageFactory,
    UserFactory,
    custom_field,
    dictionary,
    make_rule,
    stage,
)

pytestmark = pytest.mark.usefixtures("english")


# --- Stage robots on the pipeline's stage settings ---------------------------------------


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), ""

    def handle_data(self, data):
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._text.strip(), self._href))
            self._href = None


def robots_cell(response, robot_stage: Stage) -> str:
    """The HTML of the stage row's robots cell."""
    html = response.content.decode()
    start = html.find(f'class="stage-robots" data-stage="{robot_stage.pk}"')
    assert start > 0, f"no robots cell for {robot_stage}"
    return html[start : html.index("</td>", start)]


def links_in(cell: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(cell)
    return parser.links


def pipeline_page(client, pipe: Pipeline):
    response = client.get(reverse("admin:pipelines_pipeline_change", args=[pipe.pk]))
    assert response.status_code == 200
    return response


def test_each_stage_lists_its_robots_with_their_state(admin_client):
    quote, contract = stage("零售", "报价"), stage("零售", "合同")
    reminder = make_rule("deal", "stage_entered", name="报价提醒", stage=quote)
    review = make_rule(
        "deal", "time_in_stage", name="报价复核", stage=quote, params={"days": 3}, active=False
    )
    make_rule("deal", "stage_entered", name="合同跟进", stage=contract)

    response = pipeline_page(admin_client, quote.pipeline)

    # The column's heading.
    assert re.search(
        r'<th class="column-stage_panel_robots">\s*Robots\s', response.content.decode()
    )
    cell = robots_cell(response, quote)
    links = dict(links_in(cell))
    assert links["报价提醒"] == reverse("admin:automation_rule_change", args=[reminder.pk])
    assert links["报价复核"] == reverse("admin:automation_rule_change", args=[review.pk])
    assert "合同跟进" not in cell
    assert re.search(r"报价提醒</a>.*Stage entered.*>active<", cell, re.S)
    assert re.search(r"报价复核</a>.*Time in stage over a limit.*>inactive<", cell, re.S)
    assert "No robots yet." in robots_cell(response, stage("零售", "意向"))


def test_each_stage_offers_the_three_robot_templates(admin_client):
    quote = stage("零售", "报价")
    response = pipeline_page(admin_client, quote.pipeline)

    offered = [
        (text, href) for text, href in links_in(robots_cell(response, quote)) if "template=" in href
    ]
    assert [text for text, _href in offered] == [
        "+ Task for the owner",
        "+ Notify the manager after N days",
        "+ Auto-complete when the record leaves the stage",
    ]
    for (_text, href), key in zip(
        offered, ("owner_task", "notify_manager", "complete_on_leave"), strict=True
    ):
        url = urlsplit(href)
        assert url.path == reverse("admin:automation_rule_add")
        assert parse_qs(url.query) == {
            "template": [key],
            "record_type": ["deal"],
            "pipeline": [str(quote.pipeline_id)],
            "stage": [str(quote.pk)],
        }


def test_the_panel_shows_rules_by_name_only_to_who_may_not_open_them(client, org):
    """Someone who may change pipelines but not rules sees the robots' names, no links
    to rules and no templates."""
    from django.contrib.auth.models import Permission

    quote = stage("零售", "报价")
    make_rule("deal", "stage_entered", name="报价提醒", stage=quote)
    clerk = UserFactory(username="clerk", is_staff=True, language="en")
    clerk.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="pipelines",
            codename__in=["view_pipeline", "change_pipeline", "view_stage", "change_stage"],
        )
    )
    client.force_login(clerk)

    cell = robots_cell(pipeline_page(client, quote.pipeline), quote)

    assert "报价提醒" in cell and links_in(cell) == []


def test_a_new_stage_row_has_no_robots_yet(admin_client):
    pipe = PipelineFactory(name="项目")
    response = pipeline_page(admin_client, pipe)
    assert 'class="stage-robots"' not in response.content.decode()


@pytest.mark.parametrize("key", ["owner_task", "notify_manager", "complete_on_leave"])
def test_a_template_link_opens_the_rule_form_filled_in_and_saving_makes_the_robot(
    admin_client, key
):
    quote = stage("零售", "报价")
    response = pipeline_page(admin_client, quote.pipeline)
    [href] = [h for _t, h in links_in(robots_cell(response, quote)) if f"template={key}" in h]

    form_page = admin_client.get(href)

    assert form_page.status_code == 200
    form = form_page.context["adminform"].form
    preset = ROBOT_TEMPLATES[key]
    assert form["record_type"].value() == "deal"
    assert str(form["pipeline"].value()) == str(quote.pipeline_id)
    assert str(form["stage"].value()) == str(quote.pk)
    assert form["trigger"].value() == "stage_entered"
    assert form["name"].value() == f"报价: {preset['rule']['name']}"
    [actions] = [inline.formset for inline in form_page.context["inline_admin_formsets"]]
    shown = [(f["kind"].value(), json.loads(f["params"].value())) for f in actions.forms]
    assert shown == [(kind, params) for kind, params in preset["actions"]]

    saved = admin_client.post(href, admin_page_data(form_page))

    assert saved.status_code == 302, admin_errors(saved)
    rule = Rule.objects.get()
    assert (rule.record_type, rule.pipeline, rule.stage) == ("deal", quote.pipeline, quote)
    assert rule.trigger == "stage_entered" and not rule.is_active
    assert [(a.kind, a.params) for a in rule.actions.all()] == [
        (kind, clean_params(kind, "deal", params)) for kind, params in preset["actions"]
    ]
    # And the stage lists it.
    cell = robots_cell(pipeline_page(admin_client, quote.pipeline), quote)
    assert rule.name in cell


def test_the_stage_decides_the_pipeline_and_record_type_and_bad_ids_fill_nothing(admin_client):
    entry = stage("线索", "已收到联系方式")
    add = reverse("admin:automation_rule_add")

    form = admin_client.get(f"{add}?template=owner_task&stage={entry.pk}").context["adminform"].form
    assert form["record_type"].value() == "lead"
    assert str(form["pipeline"].value()) == str(entry.pipeline_id)

    for query in ("stage=abc&pipeline=-1", "stage=99999999&pipeline=x", "stage=" + "9" * 40):
        response = admin_client.get(f"{add}?template=owner_task&record_type=deal&{query}")
        assert response.status_code == 200
        form = response.context["adminform"].form
        assert form["stage"].value() in (None, "", "99999999")
        assert form["pipeline"].value() in (None, "")


# --- Export and import ------------------------------------------------------------------


def export() -> dict:
    out = io.StringIO()
    call_command("export_config", stdout=out)
    return json.loads(out.getvalue())


def run_import(tmp_path, data: dict, *args) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = io.StringIO()
    with translation.override("en"):
        call_command("import_config", str(path), *args, stdout=out)
    return out.getvalue()


def keys_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_anywhere(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_anywhere(v) for v in value)) if value else set()
    return set()


def contents() -> dict[tuple[str, str], dict]:
    """Every rule by what it is, with no ids: the stages it names by name."""
    found = {}
    for rule in Rule.objects.select_related("pipeline", "stage"):
        found[(rule.record_type, rule.name)] = {
            "description": rule.description,
            "pipeline": rule.pipeline.name if rule.pipeline else None,
            "stage": rule.stage.name if rule.stage else None,
            "is_active": rule.is_active,
            "trigger": rule.trigger,
            "trigger_params": rule.trigger_params,
            "conditions": rule.conditions,
            "actions": [
                (a.order, a.kind, export_params(a.kind, a.params)) for a in rule.actions.all()
            ],
        }
    return found


@pytest.fixture
def rules(org):
    """Rules naming everything a rule may name: a pipeline and its stages (a stage robot,
    a move to another stage), custom fields and dictionary items in conditions, a
    trigger and a set-field action, people by username, a role, a department, an email
    template."""
    project = PipelineFactory(name="项目")
    StageFactory(pipeline=project, name="接洽", order=10)
    quote = StageFactory(pipeline=project, name="报价", order=20)
    won = StageFactory(pipeline=project, name="成交", order=30, kind="won")
    grade = dictionary("grade", "等级", [("high", "高", "High"), ("low", "低", "Low")])
    custom_field("grade", "choice", record_type="deal", label="等级", dictionary=grade)
    custom_field("budget", "money", record_type="deal", label="预算")
    EmailTemplateFactory(name="回访", subject="{{ record }} 回访", body="您好 {{ owner }}")
    make_rule(
        "deal",
        "stage_entered",
        name="报价跟进",
        stage=quote,
        conditions={
            "match": "all",
            "conditions": [
                {"field": "amount", "op": "gt", "value": "10000"},
                {
                    "match": "any",
                    "conditions": [
                        {"field": "cf_grade", "op": "eq", "value": "high"},
                        {"field": "cf_grade", "op": "empty"},
                    ],
                },
            ],
        },
        actions=[
            (
                "create_task",
                {
                    "title": "跟进 {{ record }}（预算 {{ cf_budget }}）",
                    "assignee": {"type": "user", "user": "colleague"},
                    "due": {"amount": 2, "unit": "days"},
                    "complete_on_leave": True,
                },
            ),
            ("delay", {"amount": 3, "unit": "days"}),
            ("move_stage", {"stage": won.pk}),
            (
                "notify",
                {"title": "{{ record }} 已成交", "to": {"type": "role", "role": "销售代表"}},
            ),
        ],
    )
    make_rule(
        "deal",
        "field_changed",
        name="高等级",
        params={"field": "cf_grade", "to": "high"},
        actions=[("set_field", {"field": "cf_budget", "value": "5000"})],
        active=False,
    )
    make_rule(
        "customer",
        "no_activity",
        name="回访提醒",
        params={"days": 30},
        conditions=[{"field": "level", "op": "eq", "value": "a"}],
        actions=[
            ("send_email", {"template": "回访", "to": "contact"}),
            ("assign_owner", {"to": "round_robin", "department": "销售一部"}),
        ],
    )
    return {"project": project, "quote": quote, "won": won}


def test_rules_are_exported_by_names_with_no_ids(rules):
    data = export()

    assert "id" not in keys_anywhere(data) and "pk" not in keys_anywhere(data)
    assert [t["name"] for t in data["email_templates"]] == ["回访"]
    assert list(data).index("rules") > list(data).index("pipelines")
    by_name = {r["name"]: r for r in data["rules"]}
    assert [r["name"] for r in data["rules"]] == ["回访提醒", "报价跟进", "高等级"]  # by type, name
    quote = by_name["报价跟进"]
    assert (quote["record_type"], quote["pipeline"], quote["stage"]) == ("deal", "项目", "报价")
    kinds = [a["kind"] for a in quote["actions"]]
    assert kinds == ["create_task", "delay", "move_stage", "notify"]
    assert quote["actions"][2]["params"] == {"pipeline": "项目", "stage": "成交"}
    assert quote["actions"][0]["params"]["assignee"] == {"type": "user", "user": "colleague"}
    assert by_name["回访提醒"]["conditions"]["conditions"] == [
        {"field": "level", "op": "eq", "value": "a"}
    ]
    assert by_name["回访提醒"]["pipeline"] is None


def test_rules_come_back_equal_into_a_system_whose_ids_differ(rules, tmp_path):
    before = contents()
    data = export()
    old_won = rules["won"].pk
    # Another system: the rules, the templates, the pipeline (so its stages' ids), the
    # custom fields and the dictionary the rules name are gone; the file brings them.
    Rule.objects.all().delete()
    EmailTemplate.objects.all().delete()
    rules["project"].delete()
    CustomField.objects.filter(record_type="deal").delete()
    DictionaryItem.objects.filter(dictionary__code="grade").delete()
    Dictionary.objects.filter(code="grade").delete()

    output = run_import(tmp_path, data)

    assert "rules" in output and "deal.报价跟进" in output and "customer.回访提醒" in output
    assert contents() == before
    won = Stage.objects.get(pipeline__name="项目", name="成交")
    assert won.pk != old_won
    move = RuleAction.objects.get(kind="move_stage")
    assert move.params == {"stage": won.pk}
    assert Rule.objects.get(name="报价跟进").stage == Stage.objects.get(
        pipeline__name="项目", name="报价"
    )
    assert EmailTemplate.objects.get(name="回访").subject == "{{ record }} 回访"
    assert export() == data


def test_importing_twice_changes_nothing(rules, tmp_path):
    data = export()
    assert "No changes" in run_import(tmp_path, data)  # what the system has already

    Rule.objects.filter(name="回访提醒").delete()
    rule = Rule.objects.get(name="报价跟进")
    rule.description = "改过"
    rule.save()
    rule.actions.filter(kind="notify").delete()
    first = run_import(tmp_path, data)
    assert "+ created customer.回访提醒" in first and "~ changed deal.报价跟进" in first
    kept = dict(RuleAction.objects.values_list("pk", "kind"))
    logged = ConfigChange.objects.count()

    second = run_import(tmp_path, data)

    assert "No changes: the configuration already matches the file." in second
    assert dict(RuleAction.objects.values_list("pk", "kind")) == kept
    assert ConfigChange.objects.count() == logged
    assert export() == data


def test_a_dry_run_says_what_would_change_and_changes_nothing(rules, tmp_path):
    data = export()
    quote = next(r for r in data["rules"] if r["name"] == "报价跟进")
    quote["actions"][1]["params"]["amount"] = 5
    before = contents()

    output = run_import(tmp_path, data, "--dry-run")

    assert "~ would change deal.报价跟进" in output
    assert contents() == before


def test_a_file_naming_what_does_not_exist_is_refused_whole(rules, tmp_path):
    data = export()
    by_name = {r["name"]: r for r in data["rules"]}
    by_name["报价跟进"]["stage"] = "不存在的阶段"
    by_name["高等级"]["trigger_params"]["to"] = "no_such_grade"
    by_name["回访提醒"]["conditions"]["conditions"][0]["value"] = "zz"
    by_name["回访提醒"]["actions"][1]["params"]["department"] = "销售九部"
    data["rules"].append(
        {
            "record_type": "deal",
            "name": "新规则",
            "trigger": "deal_won",
            "actions": [
                {
                    "kind": "create_task",
                    "params": {"title": "回访", "assignee": {"type": "user", "user": "ghost"}},
                },
                {"kind": "move_stage", "params": {"pipeline": "项目", "stage": "签约"}},
            ],
        }
    )
    data["email_templates"][0]["subject"] = "先改一个"  # valid, and rolled back with the rest
    before, logged = contents(), ConfigChange.objects.count()

    with pytest.raises(CommandError) as refused:
        run_import(tmp_path, data)

    message = str(refused.value)
    assert "nothing was changed" in message
    assert "rules[deal.报价跟进].stage: no stage “不存在的阶段” in the pipeline “项目”" in message
    assert "rules[deal.高等级].trigger_params" in message and "no_such_grade" in message
    assert "rules[customer.回访提醒].conditions" in message and "zz" in message
    assert (
        "rules[customer.回访提醒].actions[1]: Assign the owner: No department “销售九部”."
        in message
    )
    assert "rules[deal.新规则].actions[0]: Create a task: No active user “ghost”." in message
    assert "rules[deal.新规则].actions[1].params: no stage “签约” in the pipeline “项目”" in message
    assert contents() == before
    assert not Rule.objects.filter(name="新规则").exists()
    assert EmailTemplate.objects.get(name="回访").subject == "{{ record }} 回访"
    assert ConfigChange.objects.count() == logged


@pytest.mark.parametrize(
    "rule, expected",
    [
        (
            {"name": "甲", "record_type": "robot", "trigger": "created"},
            "rules[robot.甲].record_type",
        ),
        (
            {"name": "甲", "record_type": "deal", "trigger": "sometimes"},
            "unknown trigger “sometimes”",
        ),
        ({"name": "甲", "record_type": "deal"}, "“trigger” is missing"),
        (
            {"name": "甲", "record_type": "deal", "trigger": "created", "stage": "报价"},
            "a stage needs its pipeline",
        ),
        (
            {"name": "甲", "record_type": "customer", "trigger": "created", "pipeline": "零售"},
            "only lead and deal rules have a pipeline",
        ),
        (
            {"name": "甲", "record_type": "deal", "trigger": "created", "actions": {}},
            "actions: must be a list",
        ),
        (
            {
                "name": "甲",
                "record_type": "deal",
                "trigger": "created",
                "actions": [{"kind": "notify", "to": 1}],
            },
            "unknown attribute “to”",
        ),
        (
            {
                "name": "甲",
                "record_type": "deal",
                "trigger": "created",
                "actions": [{"kind": "beam_up"}],
            },
            "Unknown action “beam_up”",
        ),
        (
            {
                "name": "甲",
                "record_type": "deal",
                "trigger": "created",
                "actions": [{"kind": "move_stage", "params": {"stage": 12}}],
            },
            "name the stage by its pipeline",
        ),
    ],
)
def test_badly_shaped_rules_are_refused(db, tmp_path, rule, expected):
    with pytest.raises(CommandError, match=re.escape(expected)):
        run_import(tmp_path, {"rules": [rule]})
    assert not Rule.objects.exists()


def test_two_rules_of_one_type_cannot_share_a_name(org):
    """The file and the log name a rule by its record type and name: one of each."""
    make_rule("deal", "created", name="重名")
    with pytest.raises(IntegrityError):
        make_rule("deal", "deal_won", name="重名")


# --- Impact -----------------------------------------------------------------------------


def lines(groups) -> dict[str, list[tuple[str, str]]]:
    return {group.title: [(u.text, u.url) for u in group.usages] for group in groups}


def rule_url(name: str) -> str:
    return reverse("admin:automation_rule_change", args=[Rule.objects.get(name=name).pk])


def test_a_custom_fields_impact_lists_the_rules_using_it(rules):
    budget = CustomField.objects.get(key="budget")
    assert lines(impact.usages_of_field(budget))["Automation rules"] == [
        ("“报价跟进” (Deal): Create a task (placeholder)", rule_url("报价跟进")),
        ("“高等级” (Deal): Set a field · inactive", rule_url("高等级")),
    ]
    grade = CustomField.objects.get(key="grade")
    assert lines(impact.usages_of_field(grade))["Automation rules"] == [
        ("“报价跟进” (Deal): conditions", rule_url("报价跟进")),
        ("“高等级” (Deal): trigger · inactive", rule_url("高等级")),
    ]


def test_placeholders_in_an_email_template_count(rules):
    template = EmailTemplate.objects.get(name="回访")
    template.body = "您好，{{ cf_tier }}"
    template.save()
    tier = custom_field("tier", "text", record_type="customer", label="客户分层")
    assert lines(impact.usages_of_field(tier))["Automation rules"] == [
        ("“回访提醒” (Customer): Send an email (placeholder)", rule_url("回访提醒")),
    ]


def test_a_dictionary_items_impact_lists_the_rules_naming_it(rules):
    high = DictionaryItem.objects.get(dictionary__code="grade", code="high")
    assert lines(impact.usages_of_item(high))["Automation rules"] == [
        ("“报价跟进” (Deal): conditions", rule_url("报价跟进")),
        ("“高等级” (Deal): trigger · inactive", rule_url("高等级")),
    ]
    level_a = DictionaryItem.objects.get(dictionary__code="customer_level", code="a")
    assert lines(impact.usages_of_item(level_a))["Automation rules"] == [
        ("“回访提醒” (Customer): conditions", rule_url("回访提醒")),
    ]
    low = DictionaryItem.objects.get(dictionary__code="grade", code="low")
    assert "Automation rules" not in lines(impact.usages_of_item(low))


def test_a_set_field_value_names_an_item_by_code_or_label(org):
    grade = dictionary("grade", "等级", [("high", "高", "High"), ("low", "低", "Low")])
    custom_field("grade", "choice", record_type="deal", label="等级", dictionary=grade)
    make_rule(
        "deal",
        "created",
        name="定级",
        actions=[("set_field", {"field": "cf_grade", "value": "低"})],
    )
    low = DictionaryItem.objects.get(dictionary=grade, code="low")
    high = DictionaryItem.objects.get(dictionary=grade, code="high")
    assert lines(impact.usages_of_item(low))["Automation rules"] == [
        ("“定级” (Deal): Set a field", rule_url("定级"))
    ]
    assert impact.usages_of_item(high) == []


def test_deactivating_a_used_field_shows_the_rules_first(admin_client, rules):
    budget = CustomField.objects.get(key="budget")
    response = admin_client.post(
        reverse("admin:crm_customfield_changelist"),
        {"action": "deactivate_selected", "_selected_action": [budget.pk]},
    )
    html = response.content.decode()
    assert "Automation rules" in html
    assert f'href="{rule_url("报价跟进")}"' in html
    assert CustomField.objects.get(pk=budget.pk).is_active


# --- The configuration document ---------------------------------------------------------


def test_the_configuration_document_lists_the_rules_in_words(admin_client, rules):
    html = admin_client.get(reverse("admin:crm_configchange_document")).content.decode()
    section = html[html.index('id="automation-rules"') :]
    assert "报价跟进" in section and "项目 · 报价" in section
    assert "all of:" in section and "Amount (CNY) greater than 10000.00" in section
    assert "any of: 等级 equals High; 等级 is empty" in section
    assert "Create a task" in section and "Move to a stage" in section
    assert "Wait before the next actions (3 days)" in section
    assert "No follow-up for a number of days: 30 days" in section
    assert "Field changed: 等级 equals High" in section
