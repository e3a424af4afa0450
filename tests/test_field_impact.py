"""crm.fields.impact: where a custom field or a dictionary item is used, for each kind of
usage, and the registry other apps add their usages through."""

import pytest

from crm.fields import impact
from crm.models import CustomField, Dictionary, DictionaryItem, SavedView

from .factories import (
    ActivityFactory,
    CustomerFactory,
    CustomFieldFactory,
    RoleFactory,
    SavedViewFactory,
    dictionary,
)

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def level(db):
    return Dictionary.objects.get(code="customer_level")


@pytest.fixture
def intent(db) -> Dictionary:
    return dictionary("intent", "合作意向", [(code, code, "") for code in ("high", "mid", "low")])


def make_field(**options) -> CustomField:
    values = {
        "record_type": "customer",
        "key": "revenue",
        "label": "年营业额",
        "field_type": "money",
    }
    values.update(options)
    return CustomFieldFactory(**values)


def lines(groups) -> dict[str, list[str]]:
    return {group.title: [usage.text for usage in group.usages] for group in groups}


def view(org, query, record_type="customer", **kwargs) -> SavedView:
    kwargs.setdefault("name", "我的视图")
    return SavedViewFactory(record_type=record_type, owner=org.owner, query=query, **kwargs)


# --- Custom fields ---------------------------------------------------------------------


def test_an_unused_field_has_no_usages(db):
    assert impact.usages_of_field(make_field()) == []


@pytest.mark.parametrize(
    "query",
    [
        "cf_revenue=100",
        "level=3&cf_revenue_min=100",
        "cf_revenue_max=5&page=2",
        "sort=-cf_revenue",
        "sort=cf_revenue",
    ],
)
def test_saved_views_filtering_or_sorting_by_the_field(org, query):
    cf = make_field()
    saved = view(org, query, name="大客户", shared=True)
    (group,) = impact.usages_of_field(cf)
    assert group.title == "Saved views"
    (usage,) = group.usages
    assert usage.text == "“大客户” (Customer, by 王芳) · shared with everyone"
    assert usage.url == f"/admin/crm/savedview/{saved.pk}/change/"


@pytest.mark.parametrize(
    "query", ["cf_revenue2=1", "cf_revenue_total=1", "q=cf_revenue", "sort=-cf_revenue2", ""]
)
def test_saved_views_that_only_look_alike_do_not_count(org, query):
    cf = make_field()
    view(org, query)
    view(org, "cf_revenue=1", record_type="contact")  # another record type's field
    assert impact.usages_of_field(cf) == []


def test_role_field_permissions_naming_the_field(org):
    cf = make_field()
    service = RoleFactory(
        name="客服", field_permissions={"customer": {"cf_revenue": "hidden", "phone": "readonly"}}
    )
    RoleFactory(name="实习生", field_permissions={"customer": {"cf_revenue": "readonly"}})
    RoleFactory(name="无关", field_permissions={"contact": {"cf_revenue": "hidden"}})
    assert lines(impact.usages_of_field(cf)) == {
        "Role field permissions": ["实习生: Read-only", "客服: Hidden"]  # by role name
    }
    usage = impact.usages_of_field(cf)[0].usages[1]
    assert usage.url == f"/admin/accounts/role/{service.pk}/change/"


def test_records_holding_a_value_are_counted(org):
    cf = make_field()
    CustomerFactory.create_batch(3, custom={"revenue": "100.00"})
    CustomerFactory(custom={"other": 1})
    (group,) = impact.usages_of_field(cf)
    assert group.title == "Records"
    assert group.usages[0].count == 3
    assert group.usages[0].text == "Customers holding a value: 3"


def test_usages_are_grouped_in_a_stable_order(org):
    cf = make_field()
    view(org, "cf_revenue=1")
    RoleFactory(name="客服", field_permissions={"customer": {"cf_revenue": "hidden"}})
    CustomerFactory(custom={"revenue": "1.00"})
    groups = impact.usages_of_field(cf)
    assert [g.title for g in groups] == ["Saved views", "Role field permissions", "Records"]
    assert len(impact.describe(groups)) == 3
    assert impact.describe(groups)[1] == "Role field permissions: 客服: Hidden"


# --- Dictionary items -------------------------------------------------------------------


def test_an_unused_item_has_no_usages(level):
    assert impact.usages_of_item(level.items.first()) == []


def test_items_referenced_by_customer_and_activity_foreign_keys(org, level):
    item = level.items.first()
    CustomerFactory.create_batch(2, level=item)
    CustomerFactory(level=level.items.last())
    assert lines(impact.usages_of_item(item)) == {"Records": ["Customers with it as level: 2"]}

    kind = DictionaryItem.objects.of("activity_kind").first()
    customer = CustomerFactory()
    ActivityFactory(customer=customer, kind=kind, content="电话沟通", author=org.owner)
    assert lines(impact.usages_of_item(kind)) == {"Records": ["Activities with it as kind: 1"]}


def test_items_held_in_custom_choice_values(org, intent):
    single = make_field(key="intent", label="意向", field_type="choice", dictionary=intent)
    make_field(key="tags2", label="多选", field_type="multi_choice", dictionary=intent)
    high = intent.items.get(code="high")
    CustomerFactory(custom={"intent": "high"})
    CustomerFactory(custom={"intent": "mid", "tags2": ["high", "low"]})
    CustomerFactory(custom={"tags2": ["high"]})
    assert lines(impact.usages_of_item(high)) == {
        "Records": ["Customers with it in 意向: 1", "Customers with it in 多选: 2"]
    }
    assert impact.usages_of_item(high)[0].usages[0].url.endswith(f"/{single.pk}/change/")
    assert impact.usages_of_item(intent.items.get(code="mid"))[0].usages[0].count == 1


def test_items_used_as_a_custom_field_default(db, intent):
    make_field(key="intent", label="意向", field_type="choice", dictionary=intent, default="mid")
    make_field(
        key="multi", label="多选", field_type="multi_choice", dictionary=intent, default="high, mid"
    )
    assert lines(impact.usages_of_item(intent.items.get(code="mid"))) == {
        "Custom fields using it as their default": ["Customer · 意向", "Customer · 多选"]
    }
    assert lines(impact.usages_of_item(intent.items.get(code="high"))) == {
        "Custom fields using it as their default": ["Customer · 多选"]
    }
    assert impact.usages_of_item(intent.items.get(code="low")) == []


def test_items_in_saved_views_by_id_or_by_code(org, level, intent):
    make_field(key="intent", label="意向", field_type="choice", dictionary=intent)
    item = level.items.first()
    view(org, f"level={item.pk}&sort=-created", name="按级别")
    view(org, f"type={item.pk}", name="另一个字典的参数")  # type is not the level dictionary
    view(org, f"level={item.pk}", record_type="contact", name="联系人")
    view(org, "cf_intent=high", name="按意向")
    view(org, "cf_intent=highest", name="相似代码")
    assert lines(impact.usages_of_item(item)) == {"Saved views": ["“按级别” (Customer, by 王芳)"]}
    assert lines(impact.usages_of_item(intent.items.get(code="high"))) == {
        "Saved views": ["“按意向” (Customer, by 王芳)"]
    }


def test_item_usage_counts_for_the_dictionary_page(org, intent):
    make_field(key="intent", label="意向", field_type="choice", dictionary=intent, default="low")
    CustomerFactory.create_batch(2, custom={"intent": "high"})
    counts = impact.item_usage_counts(intent)
    by_code = {item.code: counts.get(item.pk, 0) for item in intent.items.all()}
    assert by_code == {"high": 2, "mid": 0, "low": 1}


# --- The registry -------------------------------------------------------------------------


def test_other_apps_register_their_usages(db, intent):
    cf = make_field()
    item = intent.items.get(code="high")

    def stage_required_fields(obj):
        if isinstance(obj, CustomField) and obj.key == "revenue":
            yield impact.Usage("Stage required fields", "销售管道 · 报价", "/admin/pipelines/1/")

    def automation_rules(obj):
        if isinstance(obj, DictionaryItem):
            return [impact.Usage("Automation rules", "高意向提醒")]
        return []

    impact.register_impact(stage_required_fields)
    impact.register_impact(stage_required_fields)  # once only
    impact.register_impact(automation_rules)
    try:
        assert lines(impact.usages_of_field(cf)) == {"Stage required fields": ["销售管道 · 报价"]}
        assert lines(impact.usages_of_item(item)) == {"Automation rules": ["高意向提醒"]}
    finally:
        impact.unregister_impact(stage_required_fields)
        impact.unregister_impact(automation_rules)
    assert impact.usages_of_field(cf) == []
