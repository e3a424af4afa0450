"""Pipelines and stages as configuration: the configuration log, the configuration
document, export_config → import_config, and the impact of a custom field that stages
require."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation

from crm.config import transfer
from crm.config.log import acting_as
from crm.fields import impact
from crm.models import ConfigChange
from pipelines.models import Pipeline, Stage

from .factories import custom_field

pytestmark = pytest.mark.usefixtures("english")


def export() -> dict:
    out = io.StringIO()
    call_command("export_config", stdout=out)
    return json.loads(out.getvalue())


def run_import(tmp_path, data, *args) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = io.StringIO()
    with translation.override("en"):
        call_command("import_config", str(path), *args, stdout=out)
    return out.getvalue()


def entry(data, name, kind="deal") -> dict:
    return next(p for p in data["pipelines"] if p["kind"] == kind and p["name"] == name)


# --- The log --------------------------------------------------------------------------


def test_pipeline_and_stage_changes_are_logged_by_natural_key(org):
    pipe = Pipeline.objects.get(kind="deal", name="零售")
    stage = pipe.stages.get(name="报价")
    with acting_as(org.admin, "admin"):
        stage.time_limit_days = 3
        stage.required_fields = ["contact", "amount", "expected_close_date"]
        stage.save()
        pipe.name_en = "Retail sales"
        pipe.save()
    stage_change = ConfigChange.objects.filter(model="pipelines.stage").latest("id")
    assert stage_change.object_repr.endswith("(deal.零售.报价)")
    assert stage_change.user == org.admin and stage_change.source == "admin"
    assert {c["field"]: (c["old"], c["new"]) for c in stage_change.changes} == {
        "time_limit_days": (7, 3),
        "required_fields": (["contact", "amount"], ["contact", "amount", "expected_close_date"]),
    }
    pipe_change = ConfigChange.objects.filter(model="pipelines.pipeline").latest("id")
    assert pipe_change.changes == [{"field": "name_en", "old": "Retail", "new": "Retail sales"}]


def test_a_stage_refers_to_its_pipeline_by_natural_key(db):
    pipe = Pipeline.objects.get(kind="deal", name="批发")
    Stage.objects.create(pipeline=pipe, name="样品", order=25)
    change = ConfigChange.objects.filter(model="pipelines.stage", action="create").latest("id")
    assert {"field": "pipeline", "old": None, "new": "deal.批发"} in change.changes


# --- The document ---------------------------------------------------------------------


def test_the_document_has_a_pipelines_section(admin_client):
    custom_field("budget", "money", record_type="deal", label="预算")
    stage = Stage.objects.get(pipeline__name="零售", name="报价")
    stage.required_fields = ["contact", "amount", "cf_budget"]
    stage.save()
    response = admin_client.get(reverse("admin:crm_configchange_document"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="#pipelines"' in html and 'id="pipelines"' in html
    assert "Pipelines and stages" in html
    for text in ("零售", "批发", "线索", "已收到联系方式", "发送正式报价，金额需填写。", "预算"):
        assert text in html
    section = html[html.index('id="pipelines"') :]
    assert "contact、amount (CNY)、预算" in section
    assert "7 days" in section


# --- Export and import ----------------------------------------------------------------


def test_export_has_the_pipelines_with_their_stages_and_no_ids(db):
    data = export()
    assert [(p["kind"], p["name"]) for p in data["pipelines"]] == [
        ("deal", "零售"),
        ("deal", "批发"),
        ("lead", "线索"),
    ]
    retail = entry(data, "零售")
    assert retail["is_default"] is True
    assert [s["name"] for s in retail["stages"]] == [
        "意向", "产品介绍", "产生兴趣", "报价", "评估", "合同", "赢单", "输单",
    ]  # fmt: skip
    quote = retail["stages"][3]
    assert quote == {
        "name": "报价",
        "name_en": "Quotation",
        "order": 40,
        "kind": "open",
        "probability": 50,
        "color": "purple",
        "time_limit_days": 7,
        "required_fields": ["contact", "amount"],
        "guide": "发送正式报价，金额需填写。",
        "guide_en": "Send the formal quotation; the amount must be filled in.",
    }
    text = json.dumps(data)
    assert '"id"' not in text and '"pk"' not in text
    assert list(data).index("pipelines") > list(data).index("custom_fields")


def test_round_trip_recreates_pipelines_and_stages(db, tmp_path):
    custom_field("budget", "money", record_type="deal", label="预算")
    quote = Stage.objects.get(pipeline__name="零售", name="报价")
    quote.required_fields = ["contact", "amount", "cf_budget"]
    quote.save()
    original = export()

    # A system that has lost a pipeline and changed another.
    Pipeline.objects.get(name="批发").delete()
    quote.required_fields, quote.guide = [], "改过的说明"
    quote.save()
    assert export() != original

    output = run_import(tmp_path, original)
    assert "deal.批发" in output and "deal.零售.报价" in output
    assert export() == original
    assert Pipeline.objects.get(name="批发").stages.count() == 8
    assert "No changes" in run_import(tmp_path, original)


def test_import_adds_a_pipeline_and_logs_it(org, tmp_path):
    data = export()
    big = json.loads(json.dumps(entry(data, "批发")))
    big.update(name="大客户", name_en="Key accounts", order=30, is_default=False)
    data["pipelines"].append(big)
    run_import(tmp_path, data, "--user", org.admin.username)
    created = Pipeline.objects.get(kind="deal", name="大客户")
    assert created.stages.count() == 8
    logged = ConfigChange.objects.filter(source="import_config", model="pipelines.stage")
    assert logged.count() == 8 and {c.user for c in logged} == {org.admin}


def test_dry_run_changes_nothing(db, tmp_path):
    before = export()
    data = json.loads(json.dumps(before))
    entry(data, "零售")["stages"][0]["guide"] = "新的说明"
    output = run_import(tmp_path, data, "--dry-run")
    assert "deal.零售.意向" in output
    assert export() == before


def test_the_default_moves_when_the_file_says_so(db, tmp_path):
    data = export()
    entry(data, "零售")["is_default"] = False
    entry(data, "批发")["is_default"] = True
    run_import(tmp_path, data)
    assert Pipeline.objects.get(kind="deal", is_default=True).name == "批发"


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: entry(d, "批发").update(is_default=True), "only one deal pipeline"),
        (lambda d: entry(d, "零售").update(kind="contract"), "unknown kind “contract”"),
        (
            lambda d: entry(d, "零售")["stages"][3].update(required_fields=["cf_nothing"]),
            "unknown fields for deal: cf_nothing",
        ),
        (
            lambda d: entry(d, "零售")["stages"][3].update(required_fields="amount"),
            "must be a list of field names",
        ),
        (
            lambda d: entry(d, "零售")["stages"][6].update(probability=80),
            "a won stage has a win probability of 100",
        ),
        (
            lambda d: entry(d, "零售")["stages"].append(
                {"name": "又赢了", "kind": "won", "probability": 100}
            ),
            "only one won stage",
        ),
        (
            lambda d: entry(d, "零售")["stages"].append(dict(entry(d, "零售")["stages"][0])),
            "appears twice",
        ),
        (lambda d: entry(d, "零售")["stages"][0].update(kind="maybe"), "unknown kind “maybe”"),
    ],
)
def test_a_bad_pipelines_section_changes_nothing(db, tmp_path, change, expected):
    from django.core.management.base import CommandError

    before = export()
    data = json.loads(json.dumps(before))
    change(data)
    with pytest.raises(CommandError, match=expected):
        run_import(tmp_path, data)
    assert export() == before


def test_required_custom_fields_may_come_with_the_file(db, tmp_path):
    data = export()
    data["custom_fields"].append(
        {"record_type": "deal", "key": "budget", "label": "预算", "field_type": "money"}
    )
    entry(data, "零售")["stages"][3]["required_fields"] = ["contact", "amount", "cf_budget"]
    run_import(tmp_path, data)
    assert Stage.objects.get(pipeline__name="零售", name="报价").required_fields[-1] == "cf_budget"


def test_a_default_in_the_system_blocks_another_from_the_file(db, tmp_path):
    data = {"pipelines": [dict(entry(export(), "批发"), is_default=True)]}
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="“零售” is the default pipeline in this system"):
        run_import(tmp_path, data)


def test_the_section_is_registered_once():
    keys = [s.key for s in transfer.sections()]
    assert keys.count("pipelines") == 1


# --- Impact ---------------------------------------------------------------------------


def test_stages_requiring_a_custom_field_are_its_usages(db):
    budget = custom_field("budget", "money", record_type="deal", label="预算")
    other = custom_field("region", "text", record_type="lead", label="地区")
    for name in ("报价", "合同"):
        stage = Stage.objects.get(pipeline__name="零售", name=name)
        stage.required_fields = [*stage.required_fields, "cf_budget"]
        stage.save()
    groups = impact.usages_of_field(budget)
    lines = impact.describe(groups)
    assert "Stages requiring it: Retail · Quotation" in lines
    assert "Stages requiring it: Retail · Contract" in lines
    url = reverse("admin:pipelines_pipeline_change", args=[Pipeline.objects.get(name="零售").pk])
    assert all(u.url == url for g in groups for u in g.usages if g.title == "Stages requiring it")
    assert impact.usages_of_field(other) == []


def test_deactivating_a_required_custom_field_shows_the_stages(admin_client):
    budget = custom_field("budget", "money", record_type="deal", label="预算")
    stage = Stage.objects.get(pipeline__name="批发", name="评估")
    stage.required_fields = ["cf_budget"]
    stage.save()
    response = admin_client.get(reverse("admin:crm_customfield_change", args=[budget.pk]))
    html = response.content.decode()
    assert "Stages requiring it" in html and "Wholesale · Evaluation" in html
