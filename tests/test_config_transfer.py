"""export_config / import_config: the configuration moves between systems as JSON by
natural key, idempotently, with a dry run; a bad file is refused whole."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from accounts.models import DataScope, Role
from crm.config import transfer
from crm.models import (
    ConfigChange,
    Customer,
    CustomField,
    Dictionary,
    DictionaryItem,
    FieldType,
)

from .factories import UserFactory


def export() -> str:
    out = io.StringIO()
    call_command("export_config", stdout=out)
    return out.getvalue()


def run_import(path, *args) -> str:
    """The command's report, in English (messages are translated in zh-hans)."""
    out = io.StringIO()
    with translation.override("en"):
        call_command("import_config", str(path), *args, stdout=out)
    return out.getvalue()


def write(tmp_path, data: dict[str, Any], name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def keys_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(keys_anywhere(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_anywhere(v) for v in value)) if value else set()
    return set()


@pytest.fixture
def staff(db):
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


@pytest.fixture
def configured(db):
    """A configuration using every kind of setting: a new dictionary (with an inactive
    item), renamed default items, custom fields of several types and rules, roles with
    permissions and field permissions."""
    intent = Dictionary.objects.create(code="intent", name="合作意向")
    DictionaryItem.objects.create(
        dictionary=intent, code="high", label="高", label_en="High", order=10, color="red"
    )
    DictionaryItem.objects.create(
        dictionary=intent, code="low", label="低", order=20, is_default=True
    )
    DictionaryItem.objects.create(
        dictionary=intent, code="old", label="旧", order=30, is_active=False
    )
    website = DictionaryItem.objects.of("customer_source").get(code="website")
    website.label, website.color = "官网", "#3366ff"
    website.save()

    def field(key, label, field_type, **values):
        CustomField.objects.create(
            record_type="customer", key=key, label=label, field_type=field_type, **values
        )

    field(
        "intent",
        "合作意向",
        FieldType.CHOICE,
        dictionary=intent,
        default="low",
        show_in_list=True,
        filterable=True,
        section="销售",
        order=10,
    )
    field(
        "revenue",
        "年营业额",
        FieldType.MONEY,
        label_en="Annual revenue",
        min_value="0",
        max_value="99999999.99",
        order=20,
        help_text="上一财年",
        help_text_en="Last fiscal year",
    )
    field(
        "uscc",
        "统一社会信用代码",
        FieldType.TEXT,
        unique=True,
        max_length=18,
        pattern="[0-9A-HJ-NPQRTUWXY]{18}",
        pattern_message="请输入 18 位统一社会信用代码",
        pattern_message_en="Enter the 18-character code",
        order=30,
    )
    field("staff", "员工人数", FieldType.INTEGER, min_value="1", order=40, is_active=False)
    field("tags2", "兴趣", FieldType.MULTI_CHOICE, dictionary=intent, order=50)
    CustomField.objects.create(
        record_type="contact", key="hobby", label="爱好", field_type=FieldType.LONG_TEXT
    )
    Role.objects.create(
        name="客服",
        description="查看客户，不看营业额",
        data_scope=DataScope.ALL,
        permissions=["customer.view", "contact.view"],
        field_permissions={"customer": {"cf_revenue": "hidden", "phone": "readonly"}},
    )
    Role.objects.create(
        name="销售代表",
        data_scope=DataScope.OWN,
        permissions=["customer.view", "customer.add", "customer.change"],
        max_customers=200,
    )


def wipe_configuration() -> None:
    """Empty the configuration (the seeded dictionaries too): there are no records."""
    assert not Customer.objects.exists()
    CustomField.objects.all().delete()
    Role.objects.all().delete()
    DictionaryItem.objects.all().delete()
    Dictionary.objects.all().delete()


def test_export_is_stable_keyed_by_natural_keys_and_has_no_ids(configured):
    text = export()
    assert export() == text
    data = json.loads(text)
    assert data["format"] == "crm-config" and data["version"] == 1
    assert "id" not in keys_anywhere(data) and "pk" not in keys_anywhere(data)
    assert [d["code"] for d in data["dictionaries"]] == sorted(
        d["code"] for d in data["dictionaries"]
    )
    intent = next(d for d in data["dictionaries"] if d["code"] == "intent")
    assert [i["code"] for i in intent["items"]] == ["high", "low", "old"]
    revenue = next(f for f in data["custom_fields"] if f["key"] == "revenue")
    assert revenue["min_value"] == "0" and revenue["max_value"] == "99999999.99"
    field = next(f for f in data["custom_fields"] if f["key"] == "intent")
    assert field["dictionary"] == "intent"  # by code
    role = next(r for r in data["roles"] if r["name"] == "客服")
    assert role["permissions"] == ["contact.view", "customer.view"]
    assert role["field_permissions"] == {"customer": {"cf_revenue": "hidden", "phone": "readonly"}}


def test_export_then_import_into_an_empty_database_reproduces_the_configuration(
    configured, tmp_path, staff
):
    original = export()
    path = tmp_path / "config.json"
    path.write_text(original, encoding="utf-8")

    wipe_configuration()
    assert not Dictionary.objects.exists() and not CustomField.objects.exists()

    output = run_import(path, "--user", staff.username)
    assert "customer.uscc" in output
    assert export() == original
    # The unique field's database index came back with it (it is created on save).
    cf = CustomField.objects.get(key="uscc")
    assert cf.unique and cf.dictionary is None
    assert CustomField.objects.get(key="intent").dictionary.code == "intent"


def test_import_is_idempotent_and_says_so_the_second_time(configured, tmp_path, staff):
    data = json.loads(export())
    data["dictionaries"].append(
        {"code": "grade", "name": "等级", "items": [{"code": "a", "label": "甲"}]}
    )
    path = write(tmp_path, data)
    first = run_import(path)
    assert "grade" in first
    logged = ConfigChange.objects.count()

    second = run_import(path)
    assert "No changes: the configuration already matches the file." in second
    assert ConfigChange.objects.count() == logged


def test_dry_run_shows_what_would_change_and_changes_nothing(configured, tmp_path):
    before = export()
    logged = ConfigChange.objects.count()
    data = json.loads(before)
    intent = next(d for d in data["dictionaries"] if d["code"] == "intent")
    intent["items"][0]["label"] = "很高"
    intent["items"].append({"code": "mid", "label": "中", "order": 15})
    revenue = next(f for f in data["custom_fields"] if f["key"] == "revenue")
    revenue["max_value"] = "5000000"
    revenue["required"] = True
    data["custom_fields"].append(
        {"record_type": "customer", "key": "grade", "label": "等级", "field_type": "text"}
    )
    role = next(r for r in data["roles"] if r["name"] == "客服")
    role["field_permissions"]["customer"]["phone"] = "hidden"

    output = run_import(write(tmp_path, data), "--dry-run")

    assert "intent.high" in output and "高 → 很高" in output
    assert "intent.mid" in output
    assert "customer.revenue" in output and "99999999.99 → 5000000" in output
    assert "customer.grade" in output
    assert "客服" in output and '"phone": "readonly"' in output
    assert export() == before
    assert ConfigChange.objects.count() == logged
    assert not CustomField.objects.filter(key="grade").exists()

    # The same file for real does what the dry run said.
    run_import(write(tmp_path, data))
    assert DictionaryItem.objects.of("intent").get(code="high").label == "很高"
    assert CustomField.objects.get(key="revenue").required is True
    assert Role.objects.get(name="客服").field_permissions["customer"]["phone"] == "hidden"
    assert ConfigChange.objects.filter(source="import_config").count() == 5


def test_what_the_file_leaves_out_is_left_as_it_is(configured, tmp_path):
    path = write(tmp_path, {"roles": [{"name": "客服", "description": "新说明"}]})
    run_import(path)
    role = Role.objects.get(name="客服")
    assert role.description == "新说明"
    assert role.field_permissions == {"customer": {"cf_revenue": "hidden", "phone": "readonly"}}
    assert Role.objects.filter(name="销售代表").exists()
    assert CustomField.objects.count() == 6


def test_the_same_permissions_in_another_order_are_no_change(configured, tmp_path):
    role = Role.objects.get(name="销售代表")
    role.permissions = ["customer.change", "customer.view", "customer.add"]
    role.save()
    path = write(tmp_path, {"roles": json.loads(export())["roles"]})
    assert transfer.import_config(json.loads(path.read_text()), dry_run=True).changes == []


def bad_file(data: dict) -> dict:
    bad = copy.deepcopy(data)
    # A valid change first, to prove it is rolled back with the rest.
    bad["dictionaries"][0]["name"] = "改过的名字"
    bad["custom_fields"].append(
        {"record_type": "customer", "key": "bad_dict", "label": "甲", "field_type": "choice",
         "dictionary": "no_such_dictionary"}
    )  # fmt: skip
    bad["custom_fields"].append(
        {"record_type": "customer", "key": "bad_type", "label": "乙", "field_type": "colour"}
    )
    bad["roles"].append({"name": "坏角色", "data_scope": "everything", "permissions": "all"})
    bad["roles"].append({"name": "坏角色"})
    bad["dictionaries"][0]["items"][0]["is_active"] = "yes"
    bad["dictionaries"][0]["items"][0]["colour"] = "red"
    return bad


def test_a_bad_file_is_refused_whole_with_every_problem_named(configured, tmp_path):
    before = export()
    logged = ConfigChange.objects.count()
    path = write(tmp_path, bad_file(json.loads(before)))

    with pytest.raises(CommandError) as refused, translation.override("en"):
        run_import(path)

    message = str(refused.value)
    assert "no_such_dictionary" in message
    assert "custom_fields[customer.bad_dict].dictionary" in message
    assert "custom_fields[customer.bad_type].field_type" in message and "colour" in message
    assert "roles[坏角色].data_scope" in message
    assert "roles[坏角色].permissions" in message
    assert "appears twice" in message
    assert "items[call].is_active" in message
    assert "unknown attribute “colour”" in message
    assert export() == before
    assert ConfigChange.objects.count() == logged


def test_problems_only_model_validation_finds_refuse_the_file_and_roll_back(configured, tmp_path):
    """Definitions are checked by the same code as in the admin (full_clean): a bad
    pattern, a default not among the choices, min above max, a unique field whose
    records already share a value. Valid changes earlier in the file are undone."""
    Customer.objects.create(name="甲公司", custom={"hobby_code": "x"})
    CustomField.objects.create(
        record_type="customer", key="hobby_code", label="爱好代码", field_type=FieldType.TEXT
    )
    Customer.objects.create(name="乙公司", custom={"hobby_code": "x"})
    before = export()
    logged = ConfigChange.objects.count()
    data = json.loads(before)
    data["dictionaries"][0]["name"] = "先改一个"
    fields = {f["key"]: f for f in data["custom_fields"]}
    fields["uscc"]["pattern"] = "[0-9"
    fields["intent"]["default"] = "nonexistent"
    fields["revenue"]["min_value"] = "100"
    fields["revenue"]["max_value"] = "1"
    fields["hobby_code"]["unique"] = True

    with pytest.raises(CommandError) as refused, translation.override("en"):
        run_import(write(tmp_path, data), "--dry-run")
    message = str(refused.value)
    assert "custom_fields[customer.uscc].pattern" in message
    assert "custom_fields[customer.intent].default" in message
    assert "custom_fields[customer.revenue].max_value" in message
    assert "custom_fields[customer.hobby_code].unique" in message
    with pytest.raises(CommandError):
        run_import(write(tmp_path, data))
    assert export() == before
    assert ConfigChange.objects.count() == logged
    assert Dictionary.objects.get(code=data["dictionaries"][0]["code"]).name != "先改一个"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"format": "something-else"}', "not a configuration file"),
        ('{"version": 99}', "newer version"),
        ('{"pipelines_typo": []}', "unknown section"),
        ('{"dictionaries": {}}', "must be a list"),
        ('{"dictionaries": [{"name": "无代码"}]}', "“code” is missing"),
    ],
)
def test_files_that_are_not_configuration_are_refused(db, tmp_path, text, expected):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CommandError, match=expected), translation.override("en"):
        run_import(path)


def test_export_to_a_file(configured, tmp_path):
    path = tmp_path / "out.json"
    call_command("export_config", "-o", str(path), stderr=io.StringIO())
    assert path.read_text(encoding="utf-8") == export()


class NoteSection(transfer.Section):
    """What a later app does: its own part of the file (here the test-only Note)."""

    key = "notes"
    title = "Notes"
    order = 40
    key_fields = ("title",)
    fields = ()

    @property
    def model(self):
        from tests.testapp.models import Note

        return Note

    def export(self):
        return [{"title": n.title} for n in self.queryset().order_by("title")]


@pytest.fixture
def note_section():
    section = NoteSection()
    transfer.register_section(section)
    yield section
    transfer._sections.pop(section.key)


def test_later_apps_plug_in_their_own_section(db, tmp_path, note_section):
    from tests.testapp.models import Note

    Note.objects.create(title="阶段一")
    data = json.loads(export())
    assert data["notes"] == [{"title": "阶段一"}]
    assert list(data)[-1] == "notes"  # after the sections it may refer to
    data["notes"].append({"title": "阶段二"})
    output = run_import(write(tmp_path, data))
    assert "阶段二" in output
    assert sorted(Note.objects.values_list("title", flat=True)) == ["阶段一", "阶段二"]
    assert "No changes" in run_import(write(tmp_path, data))
