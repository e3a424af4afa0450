"""What the rule builder (automation/static/automation/builder.js) is given by the admin:
the catalogue of fields, operators, people and stages for every record type, in one
json_script block after the conditions' textarea; the textareas it enhances; and an
extra action row left alone is not an action to check."""

import json
import re

import pytest
from django.utils import translation

from automation.admin import CATALOGUE_ID, RuleActionForm, builder_catalogue
from automation.conditions import OPS_BY_KIND
from automation.models import EmailTemplate
from crm.models import DictionaryItem
from pipelines.models import Stage

ADD = "/admin/automation/rule/add/"

pytestmark = pytest.mark.django_db


def by_name(fields):
    return {field["name"]: field for field in fields}


def test_the_catalogue_lists_each_record_types_fields_with_their_values(org):
    EmailTemplate.objects.create(name="生日祝福", subject="生日快乐", body="{{ record }}")
    with translation.override("zh-hans"):
        catalogue = builder_catalogue()
    assert set(catalogue["fields"]) == {"customer", "contact", "lead", "deal", "task"}
    deal = by_name(catalogue["fields"]["deal"])
    assert deal["amount"]["kind"] == "number" and deal["amount"]["options"] is None
    assert deal["status"]["options"][0][0] == "open"
    assert deal["owner"]["kind"] == "user"
    # Who owns a record is set by its own action, not by "set a field".
    assert deal["owner"]["settable"] is False and deal["amount"]["settable"] is True
    customer = by_name(catalogue["fields"]["customer"])
    levels = DictionaryItem.objects.of("customer_level").active().order_by("order", "id")
    assert customer["level"]["options"] == [[item.code, str(item)] for item in levels]
    assert customer["tags"]["kind"] == "tags" and customer["tags"]["settable"] is False
    # Operators in one order, each kind's subset of them.
    order = [op for op, _label in catalogue["operators"]]
    for kind, ops in catalogue["ops_by_kind"].items():
        assert set(ops) == OPS_BY_KIND[kind]
        assert ops == [op for op in order if op in ops]
    usernames = [username for username, _label in catalogue["users"]]
    assert org.owner.username in usernames and catalogue["users_complete"]
    deal_stages = [pk for pk, _label in catalogue["stages"]["deal"]]
    assert set(deal_stages) == set(
        Stage.objects.filter(pipeline__kind="deal").values_list("pk", flat=True)
    )
    assert catalogue["email_templates"] == ["生日祝福"]
    assert catalogue["actions"]["move_stage"] == ["deal", "lead"]
    assert catalogue["actions"]["create_task"] is None
    assert catalogue["labels"]["show_json"]
    assert len(catalogue["labels"]["weekdays"]) == 7


def test_the_add_page_carries_the_builder_and_its_catalogue(admin_client):
    response = admin_client.get(ADD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "automation/builder.js" in html and "automation/builder.css" in html
    for name, builder in (
        ("trigger_params", "trigger"),
        ("conditions", "conditions"),
        ("actions-0-params", "action"),
    ):
        assert re.search(rf'<textarea[^>]*name="{name}"[^>]*data-builder="{builder}"', html) or (
            re.search(rf'<textarea[^>]*data-builder="{builder}"[^>]*name="{name}"', html)
        ), name
    # One catalogue for the page, readable as JSON.
    assert html.count(f'id="{CATALOGUE_ID}"') == 1
    block = re.search(rf'<script id="{CATALOGUE_ID}" type="application/json">(.*?)</script>', html)
    catalogue = json.loads(block.group(1))
    assert "deal" in catalogue["fields"]


def test_an_extra_action_row_left_alone_is_not_an_action():
    untouched = RuleActionForm(
        data={"x-order": "0", "x-kind": "create_task", "x-params": ""},
        prefix="x",
        empty_permitted=True,
        use_required_attribute=False,
    )
    assert not untouched.has_changed()
    filled = RuleActionForm(
        data={"x-order": "0", "x-kind": "notify", "x-params": '{"title": "跟进"}'},
        prefix="x",
        empty_permitted=True,
        use_required_attribute=False,
    )
    assert filled.has_changed()
