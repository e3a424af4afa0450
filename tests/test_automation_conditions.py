"""Automation conditions: every operator on every kind of standard and custom field means
one thing — in the match preview (rules.matching) and in the check of one record when a
rule runs (engine.evaluate). Conditions name fields by key and dictionary items by code,
so a renamed label changes nothing; a wrong condition is refused when it is saved, with
a message naming the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from automation.conditions import clean_conditions, describe_leaf
from automation.engine import evaluate
from automation.models import Rule
from automation.records import automated_type
from automation.rules import matching
from crm.models import CustomField

from .factories import (
    ContactFactory,
    CustomerFactory,
    DealFactory,
    DictionaryItemFactory,
    TagFactory,
    TaskFactory,
    custom_field,
    dictionary,
    item,
    stage,
)

TODAY = timezone.localdate()


def probe(record_type: str, conditions) -> Rule:
    """An unsaved rule with these conditions, checked as the admin checks them."""
    return Rule(
        record_type=record_type,
        trigger="created",
        conditions=clean_conditions(record_type, conditions),
    )


def matched(viewer, record_type: str, conditions) -> set[str]:
    """The names of the records the conditions match, found by the preview and checked
    one by one as a run checks them (both must agree)."""
    rule = probe(record_type, conditions)
    model = automated_type(record_type).model
    found = {str(record) for record in matching(rule, viewer)}
    one_by_one = {
        str(record) for record in model.objects.all() if evaluate(rule, record, record_type)[0]
    }
    assert found == one_by_one, (conditions, found, one_by_one)
    return found


@pytest.fixture
def book(org):
    """Three customers: a VIP one full of values, a plain one, a bare one."""
    vip = DictionaryItemFactory(dictionary__code="customer_level", code="vip", label="VIP")
    intention = dictionary("intention", "购买意向", [("high", "高", "High"), ("low", "低", "Low")])
    hobbies = dictionary(
        "hobby", "爱好", [("golf", "高尔夫", "Golf"), ("tea", "茶", "Tea"), ("ski", "滑雪", "Ski")]
    )
    custom_field("region", "text", label="区域")
    custom_field("revenue", "money", label="年营业额")
    custom_field("founded", "date", label="成立日期")
    custom_field("intention", "choice", label="购买意向", dictionary=intention)
    custom_field("hobbies", "multi_choice", label="爱好", dictionary=hobbies)
    custom_field("listed", "boolean", label="是否上市")
    custom_field("manager", "user", label="客户经理")
    custom_field("signed_at", "datetime", label="签约时间")
    now = timezone.now()
    CustomerFactory(
        name="上海恒信机械",
        owner=org.owner,
        level=vip,
        email="info@hengxin.cn",
        last_activity_at=now - timedelta(days=2),
        next_follow_up_at=now + timedelta(days=2),
        tags=[TagFactory(name="重点"), TagFactory(name="华东")],
        custom={
            "region": "华东区",
            "revenue": "1200000.00",
            "founded": "2010-05-01",
            "intention": "high",
            "hobbies": ["golf", "tea"],
            "listed": True,
            "manager": org.colleague.pk,
            "signed_at": (now - timedelta(days=1)).replace(microsecond=0).isoformat(),
        },
    )
    CustomerFactory(
        name="杭州云帆科技",
        owner=org.colleague,
        level=item("customer_level", "b"),
        last_activity_at=now - timedelta(days=20),
        tags=[TagFactory(name="华东")],
        custom={
            "region": "华南区",
            "revenue": "50000.00",
            "founded": "2020-01-01",
            "intention": "low",
            "hobbies": ["tea"],
            "listed": False,
            "manager": org.owner.pk,
        },
    )
    CustomerFactory(name="北京数联", owner=org.owner)
    return org


FULL, PLAIN, BARE = "上海恒信机械", "杭州云帆科技", "北京数联"
EVERYONE = {FULL, PLAIN, BARE}

STANDARD = [
    # text
    ("name", "eq", "杭州云帆科技", {PLAIN}),
    ("name", "ne", "杭州云帆科技", {FULL, BARE}),
    ("name", "in", "上海恒信机械，北京数联", {FULL, BARE}),
    ("name", "not_in", ["上海恒信机械", "北京数联"], {PLAIN}),
    ("name", "contains", "恒信", {FULL}),
    ("email", "empty", None, {PLAIN, BARE}),
    ("email", "not_empty", None, {FULL}),
    # a dictionary item, by its code
    ("level", "eq", "vip", {FULL}),
    ("level", "ne", "vip", {PLAIN, BARE}),
    ("level", "in", ["vip", "b"], {FULL, PLAIN}),
    ("level", "not_in", ["vip"], {PLAIN, BARE}),
    ("level", "empty", None, {BARE}),
    ("level", "not_empty", None, {FULL, PLAIN}),
    # the owner, by user name
    ("owner", "eq", "owner", {FULL, BARE}),
    ("owner", "ne", "owner", {PLAIN}),
    ("owner", "in", ["colleague", "outsider"], {PLAIN}),
    ("owner", "not_in", ["colleague"], {FULL, BARE}),
    ("owner", "empty", None, set()),
    ("owner", "not_empty", None, EVERYONE),
    # tags
    ("tags", "contains", "重点", {FULL}),
    ("tags", "in", ["重点", "华东"], {FULL, PLAIN}),
    ("tags", "not_in", ["重点"], {PLAIN, BARE}),
    ("tags", "empty", None, {BARE}),
    ("tags", "not_empty", None, {FULL, PLAIN}),
    # a date and time
    ("last_activity_at", "within_last", 7, {FULL}),
    ("last_activity_at", "within_next", 7, set()),
    ("next_follow_up_at", "within_next", 3, {FULL}),
    ("last_activity_at", "gt", (TODAY - timedelta(days=10)).isoformat(), {FULL}),
    ("last_activity_at", "lt", (TODAY - timedelta(days=10)).isoformat(), {PLAIN}),
    ("last_activity_at", "empty", None, {BARE}),
    ("last_activity_at", "not_empty", None, {FULL, PLAIN}),
]

CUSTOM = [
    # text
    ("cf_region", "eq", "华东区", {FULL}),
    ("cf_region", "ne", "华东区", {PLAIN, BARE}),
    ("cf_region", "in", ["华东区", "华南区"], {FULL, PLAIN}),
    ("cf_region", "not_in", ["华东区"], {PLAIN, BARE}),
    ("cf_region", "contains", "南", {PLAIN}),
    ("cf_region", "empty", None, {BARE}),
    ("cf_region", "not_empty", None, {FULL, PLAIN}),
    # money
    ("cf_revenue", "eq", "120万", {FULL}),
    ("cf_revenue", "ne", "¥1,200,000", {PLAIN, BARE}),
    ("cf_revenue", "in", ["50000", "1200000"], {FULL, PLAIN}),
    ("cf_revenue", "not_in", ["50000"], {FULL, BARE}),
    ("cf_revenue", "gt", "100000", {FULL}),
    ("cf_revenue", "lt", "100000", {PLAIN}),
    ("cf_revenue", "empty", None, {BARE}),
    ("cf_revenue", "not_empty", None, {FULL, PLAIN}),
    # date
    ("cf_founded", "eq", "2010年5月1日", {FULL}),
    ("cf_founded", "ne", "2010-05-01", {PLAIN, BARE}),
    ("cf_founded", "gt", "2015-01-01", {PLAIN}),
    ("cf_founded", "lt", "2015-01-01", {FULL}),
    ("cf_founded", "within_last", 36500, {FULL, PLAIN}),
    ("cf_founded", "within_next", 30, set()),
    ("cf_founded", "empty", None, {BARE}),
    # date and time
    ("cf_signed_at", "within_last", 3, {FULL}),
    ("cf_signed_at", "gt", (TODAY - timedelta(days=5)).isoformat(), {FULL}),
    ("cf_signed_at", "empty", None, {PLAIN, BARE}),
    # choice
    ("cf_intention", "eq", "high", {FULL}),
    ("cf_intention", "ne", "high", {PLAIN, BARE}),
    ("cf_intention", "in", ["high", "low"], {FULL, PLAIN}),
    ("cf_intention", "not_in", ["high"], {PLAIN, BARE}),
    ("cf_intention", "empty", None, {BARE}),
    ("cf_intention", "not_empty", None, {FULL, PLAIN}),
    # multiple choice
    ("cf_hobbies", "contains", "golf", {FULL}),
    ("cf_hobbies", "in", ["golf", "ski"], {FULL}),
    ("cf_hobbies", "not_in", ["golf"], {PLAIN, BARE}),
    ("cf_hobbies", "empty", None, {BARE}),
    ("cf_hobbies", "not_empty", None, {FULL, PLAIN}),
    # yes/no
    ("cf_listed", "eq", "是", {FULL}),
    ("cf_listed", "eq", False, {PLAIN}),
    ("cf_listed", "ne", True, {PLAIN, BARE}),
    ("cf_listed", "empty", None, {BARE}),
    ("cf_listed", "not_empty", None, {FULL, PLAIN}),
    # a person
    ("cf_manager", "eq", "colleague", {FULL}),
    ("cf_manager", "ne", "colleague", {PLAIN, BARE}),
    ("cf_manager", "in", ["colleague", "owner"], {FULL, PLAIN}),
    ("cf_manager", "not_in", ["colleague"], {PLAIN, BARE}),
    ("cf_manager", "empty", None, {BARE}),
]


def leaf(field, op, value):
    return {"field": field, "op": op, **({} if value is None else {"value": value})}


def by_field(table) -> dict[str, list[tuple]]:
    grouped: dict[str, list[tuple]] = {}
    for field, op, value, expected in table:
        grouped.setdefault(field, []).append((op, value, expected))
    return grouped


def check_operators(viewer, record_type: str, field: str, cases) -> None:
    """Each (operator, value, expected records) of the field; every miss is reported."""
    wrong = []
    for op, value, expected in cases:
        found = matched(viewer, record_type, [leaf(field, op, value)])
        if found != expected:
            wrong.append((op, value, sorted(found), sorted(expected)))
    assert not wrong, wrong


@pytest.mark.parametrize(("field", "cases"), by_field(STANDARD + CUSTOM).items())
def test_every_operator_on_a_customer_field(book, field, cases):
    check_operators(book.admin, "customer", field, cases)


@pytest.fixture
def deals(org):
    """Three deals: a big open one closing soon, a small won one, a lost one."""
    DealFactory(
        title="年度采购",
        owner=org.owner,
        amount=120000,
        expected_close_date=TODAY + timedelta(days=10),
    )
    DealFactory(
        title="试用订单",
        owner=org.owner,
        amount=5000,
        expected_close_date=TODAY - timedelta(days=5),
        stage=stage("零售", "赢单"),
    )
    DealFactory(title="流失订单", owner=org.owner, stage=stage("零售", "输单"))
    return org


BIG, WON, LOST = "年度采购", "试用订单", "流失订单"

DEAL_FIELDS = [
    # a number
    ("amount", "eq", "12万", {BIG}),
    ("amount", "ne", "5000", {BIG, LOST}),
    ("amount", "in", ["5000", "120000"], {BIG, WON}),
    ("amount", "not_in", ["0"], {BIG, WON}),
    ("amount", "gt", "10000", {BIG}),
    ("amount", "lt", "10000", {WON, LOST}),
    ("amount", "empty", None, set()),
    ("amount", "not_empty", None, {BIG, WON, LOST}),
    # a date
    ("expected_close_date", "eq", (TODAY + timedelta(days=10)).isoformat(), {BIG}),
    ("expected_close_date", "ne", (TODAY + timedelta(days=10)).isoformat(), {WON, LOST}),
    ("expected_close_date", "gt", TODAY.isoformat(), {BIG}),
    ("expected_close_date", "lt", TODAY.isoformat(), {WON}),
    ("expected_close_date", "within_next", 30, {BIG}),
    ("expected_close_date", "within_last", 30, {WON}),
    ("expected_close_date", "empty", None, {LOST}),
    ("expected_close_date", "not_empty", None, {BIG, WON}),
    # choices
    ("status", "eq", "won", {WON}),
    ("status", "ne", "won", {BIG, LOST}),
    ("status", "in", ["won", "lost"], {WON, LOST}),
    ("status", "not_in", ["open"], {WON, LOST}),
    ("status", "not_empty", None, {BIG, WON, LOST}),
    # text
    ("title", "contains", "订单", {WON, LOST}),
]


@pytest.mark.parametrize(("field", "cases"), by_field(DEAL_FIELDS).items())
def test_every_operator_on_a_deal_field(deals, field, cases):
    check_operators(deals.admin, "deal", field, cases)


def test_yes_no_and_people_on_contacts_and_tasks(org):
    customer = CustomerFactory(owner=org.owner)
    ContactFactory(customer=customer, name="陈静", do_not_contact=True)
    ContactFactory(customer=customer, name="周敏")
    check_operators(
        org.admin,
        "contact",
        "do_not_contact",
        [
            ("eq", True, {"陈静"}),
            ("eq", "否", {"周敏"}),
            ("ne", True, {"周敏"}),
            ("not_empty", None, {"陈静", "周敏"}),
        ],
    )
    TaskFactory(title="打电话", assignee=org.owner, due_at=timezone.now() + timedelta(hours=5))
    TaskFactory(title="发资料", assignee=org.colleague, status="done")
    check_operators(
        org.admin,
        "task",
        "assignee",
        [("eq", "王芳", {"打电话"}), ("not_in", ["owner"], {"发资料"})],
    )
    check_operators(org.admin, "task", "status", [("eq", "open", {"打电话"})])
    check_operators(org.admin, "task", "due_at", [("within_next", 1, {"打电话"})])


def test_level_is_not_vip_holds_for_a_customer_with_no_level(book):
    assert BARE in matched(book.admin, "customer", [leaf("level", "ne", "vip")])
    assert BARE in matched(book.admin, "customer", [leaf("level", "not_in", ["vip", "a"])])


def test_all_and_any_nest_one_level(book):
    conditions = {
        "match": "any",
        "conditions": [
            leaf("level", "eq", "vip"),
            {
                "match": "all",
                "conditions": [leaf("owner", "eq", "colleague"), leaf("tags", "contains", "华东")],
            },
        ],
    }
    assert matched(book.admin, "customer", conditions) == {FULL, PLAIN}
    conditions["match"] = "all"
    assert matched(book.admin, "customer", conditions) == set()
    both = [leaf("tags", "contains", "华东"), leaf("owner", "eq", "owner")]
    assert matched(book.admin, "customer", {"match": "all", "conditions": both}) == {FULL}
    assert matched(book.admin, "customer", {"match": "any", "conditions": both}) == EVERYONE


def test_a_renamed_dictionary_label_matches_the_same_records(book):
    rule = probe("customer", [leaf("level", "eq", "VIP")])  # typed as its label
    assert rule.conditions["conditions"][0]["value"] == "vip"
    vip = item("customer_level", "vip")
    vip.label = "钻石客户"
    vip.save()
    assert {str(c) for c in matching(rule, book.admin)} == {FULL}
    assert describe_leaf("customer", rule.conditions["conditions"][0]).endswith("钻石客户")


def test_a_deleted_custom_field_makes_its_condition_not_hold(book):
    rule = probe("customer", [leaf("cf_region", "eq", "华东区")])
    CustomField.objects.get(key="region").delete()
    full = next(c for c in matching(probe("customer", []), book.admin) if str(c) == FULL)
    ok, trace = evaluate(rule, full, "customer")
    assert not ok and trace[0]["ok"] is False
    assert list(matching(rule, book.admin)) == []


def errors_of(record_type: str, conditions) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        clean_conditions(record_type, conditions)
    return refused.value.messages


def test_clean_conditions_refuses_what_a_rule_could_not_mean(book, english):
    assert errors_of("customer", [leaf("levle", "eq", "vip")]) == ["Unknown field “levle”."]
    assert errors_of("customer", [leaf("level", "gt", "vip")]) == [
        "“greater than” does not apply to Level."
    ]
    [typo] = errors_of("customer", [leaf("level", "ne", "viq")])
    assert typo.startswith("Level: ") and "viq" in typo
    assert errors_of("customer", [leaf("level", "eq", "")]) == [
        "Level: Give a value, or use “is empty”."
    ]
    nested = {
        "match": "all",
        "conditions": [
            {
                "match": "any",
                "conditions": [{"match": "all", "conditions": [leaf("level", "eq", "vip")]}],
            }
        ],
    }
    assert errors_of("customer", nested) == ["Groups nest one level deep."]
    assert errors_of("customer", {"match": "some", "conditions": []}) == [
        "Conditions are grouped with “all” or “any”."
    ]
    # Every wrong condition is listed at once.
    assert len(errors_of("customer", [leaf("levle", "eq", 1), leaf("level", "ne", "viq")])) == 2
