"""Every custom field type's validation through crm.fields.types.clean_value (the one
source of truth the form, the import, the API and automation share), and a unique
field under two concurrent saves."""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.utils import translation

from crm.fields import types
from crm.models import Customer, CustomField, Dictionary, DictionaryItem, FieldType

from .factories import (
    CustomerFactory,
    CustomFieldFactory,
    dictionary,
)


def field(field_type, **options) -> CustomField:
    return CustomField(
        record_type="customer", key="x", label="测试", field_type=field_type, **options
    )


def rejects(cf, raw, **kwargs) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        types.clean_value(cf, raw, **kwargs)
    return exc.value.messages


@pytest.fixture
def intent(db) -> Dictionary:
    return dictionary(
        "intent",
        "合作意向",
        [("high", "强烈", "Strong"), ("mid", "一般", "Some"), ("low", "较弱", "Weak")],
    )


# --- Good values, including what people type and Excel exports ---------------------------


@pytest.mark.parametrize(
    ("field_type", "raw", "stored"),
    [
        (FieldType.TEXT, "  华东区  ", "华东区"),
        (FieldType.LONG_TEXT, "第一行\n第二行", "第一行\n第二行"),
        (FieldType.INTEGER, "42", 42),
        (FieldType.INTEGER, "1,234", 1234),
        (FieldType.INTEGER, 12.0, 12),
        (FieldType.DECIMAL, "3.1415", "3.1415"),
        (FieldType.DECIMAL, "12 000", "12000"),
        (FieldType.DECIMAL, "1.50", "1.5"),
        (FieldType.MONEY, "¥1,234.50", "1234.50"),
        (FieldType.MONEY, "￥ 99", "99.00"),
        (FieldType.MONEY, "RMB 8,000元", "8000.00"),
        (FieldType.MONEY, 1234.5, "1234.50"),
        (FieldType.DATE, "2026-03-05", "2026-03-05"),
        (FieldType.DATE, "2026年3月5日", "2026-03-05"),
        (FieldType.DATE, "2026/3/5", "2026-03-05"),
        (FieldType.DATE, "20260305", "2026-03-05"),
        # Asia/Shanghai local time, stored in UTC.
        (FieldType.DATETIME, "2026-03-05 10:00", "2026-03-05T02:00:00+00:00"),
        (FieldType.DATETIME, "2026年3月5日 10:30", "2026-03-05T02:30:00+00:00"),
        (FieldType.BOOLEAN, "是", True),
        (FieldType.BOOLEAN, "否", False),
        (FieldType.BOOLEAN, "yes", True),
        (FieldType.BOOLEAN, "0", False),
        (FieldType.BOOLEAN, True, True),
        (FieldType.EMAIL, " sales@example.com ", "sales@example.com"),
        (FieldType.PHONE, "138 0013 8000", "+8613800138000"),
        (FieldType.PHONE, "+86 10 6552 9988", "+861065529988"),
        (FieldType.URL, "example.com", "https://example.com"),
        (FieldType.URL, "http://example.com/a", "http://example.com/a"),
    ],
)
def test_good_values_are_stored_in_the_types_form(db, field_type, raw, stored):
    value = types.clean_value(field(field_type), raw)
    assert value == stored
    assert type(value) is type(stored)


@pytest.mark.parametrize(
    ("field_type", "raw"),
    [
        (FieldType.INTEGER, "abc"),
        (FieldType.INTEGER, "1.5"),
        (FieldType.DECIMAL, "一千"),
        (FieldType.MONEY, "12.345"),
        (FieldType.DATE, "2026-02-30"),
        (FieldType.DECIMAL, "3.14159"),
        (FieldType.DATE, "next tuesday"),
        (FieldType.DATETIME, "2026-03-05 25:00"),
        (FieldType.BOOLEAN, "maybe"),
        (FieldType.EMAIL, "not-an-email"),
        (FieldType.PHONE, "12"),
        (FieldType.URL, "http://"),
    ],
)
def test_bad_values_are_refused_with_a_message(db, field_type, raw):
    assert rejects(field(field_type), raw)


@pytest.mark.parametrize(
    "field_type", [t for t in FieldType if t not in ("choice", "multi_choice")]
)
def test_required_refuses_empty_and_optional_stores_nothing(db, field_type):
    cf = field(field_type, required=True)
    with translation.override("zh-hans"):
        # Django REST framework (installed for the API) words it so; Django says
        # 这个字段是必填项。
        assert rejects(cf, "") == ["该字段是必填项。"]
    assert rejects(cf, None)
    assert types.clean_value(cf, "", required=False) is None
    assert types.clean_value(field(field_type), "") is None


def test_required_choice_fields(intent):
    for kind in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        cf = field(kind, dictionary=intent, required=True)
        assert rejects(cf, "")
        assert types.clean_value(cf, "", required=False) is None


# --- Rules: pattern, length, range ------------------------------------------------------


def credit_code_field(**options) -> CustomField:
    return field(
        FieldType.TEXT,
        pattern=r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}",
        pattern_message="请输入18位统一社会信用代码",
        pattern_message_en="Enter the 18-character unified social credit code",
        **options,
    )


def test_pattern_accepts_a_whole_match_only(db):
    cf = credit_code_field()
    assert types.clean_value(cf, "91310000MA1FL8XQ30") == "91310000MA1FL8XQ30"
    assert rejects(cf, "91310000MA1FL8XQ30X")  # a longer text containing a match
    assert rejects(cf, "x91310000MA1FL8XQ30")


def test_pattern_message_in_the_users_language(db):
    cf = credit_code_field()
    with translation.override("zh-hans"):
        assert rejects(cf, "123") == ["请输入18位统一社会信用代码"]
    with translation.override("en"):
        assert rejects(cf, "123") == ["Enter the 18-character unified social credit code"]


def test_pattern_without_an_english_message_falls_back_to_chinese(db):
    cf = credit_code_field()
    cf.pattern_message_en = ""
    with translation.override("en"):
        assert rejects(cf, "123") == ["请输入18位统一社会信用代码"]


def test_pattern_without_a_message_gets_a_generic_one(db):
    cf = field(FieldType.TEXT, pattern=r"[A-Z]{3}")
    with translation.override("en"):
        assert rejects(cf, "ab") == ["Enter a value in the required format."]


@pytest.mark.parametrize(
    ("field_type", "good"),
    [(FieldType.EMAIL, "a@sales.example.com"), (FieldType.URL, "https://sales.example.com")],
)
def test_pattern_applies_to_email_and_url(db, field_type, good):
    cf = field(field_type, pattern=r".*sales\.example\.com.*", pattern_message="只收公司域名")
    assert types.clean_value(cf, good)
    with translation.override("zh-hans"):
        bad = "a@other.cn" if field_type == FieldType.EMAIL else "https://other.cn"
        assert rejects(cf, bad) == ["只收公司域名"]


def test_max_length(db):
    cf = field(FieldType.TEXT, max_length=5)
    assert types.clean_value(cf, "12345") == "12345"
    with translation.override("en"):
        (message,) = rejects(cf, "123456")
    assert "5" in message and "6" in message


def test_text_has_a_sane_limit_without_a_max_length(db):
    assert rejects(field(FieldType.TEXT), "长" * 501)
    assert types.clean_value(field(FieldType.LONG_TEXT), "长" * 5000) == "长" * 5000


@pytest.mark.parametrize(
    ("field_type", "low", "high"),
    [
        (FieldType.INTEGER, "0", "100"),
        (FieldType.DECIMAL, "0.5", "99.5"),
        (FieldType.MONEY, "1", "1000"),
    ],
)
def test_min_and_max(db, field_type, low, high):
    cf = field(field_type, min_value=Decimal(low), max_value=Decimal(high))
    assert types.clean_value(cf, low) is not None
    assert types.clean_value(cf, high) is not None
    with translation.override("en"):
        (below,) = rejects(cf, str(Decimal(low) - 1))
        (above,) = rejects(cf, str(Decimal(high) + 1))
    assert "greater than or equal to" in below and low in below
    assert "less than or equal to" in above and high in above


def test_min_max_messages_in_chinese(db):
    cf = field(FieldType.INTEGER, min_value=Decimal(10), max_value=Decimal(20))
    with translation.override("zh-hans"):
        assert rejects(cf, "21") == ["确保该值小于或等于20。"]
        assert rejects(cf, "9") == ["确保该值大于或等于10。"]


# --- Choices and users --------------------------------------------------------------------


def test_single_choice_by_code_or_either_label(intent):
    cf = field(FieldType.CHOICE, dictionary=intent)
    assert types.clean_value(cf, "high") == "high"
    assert types.clean_value(cf, "强烈") == "high"
    assert types.clean_value(cf, "weak") == "low"
    assert rejects(cf, "unknown")


def test_multiple_choice_from_a_list_or_a_text(intent):
    cf = field(FieldType.MULTI_CHOICE, dictionary=intent)
    assert types.clean_value(cf, ["high", "low"]) == ["high", "low"]
    assert types.clean_value(cf, "强烈、一般") == ["high", "mid"]
    assert types.clean_value(cf, "Strong, Weak") == ["high", "low"]
    assert rejects(cf, "high, nothing")


def test_deactivated_items_are_not_offered_for_new_input_but_kept_on_old_records(intent):
    DictionaryItem.objects.filter(dictionary=intent, code="low").update(is_active=False)
    single = field(FieldType.CHOICE, dictionary=intent)
    multi = field(FieldType.MULTI_CHOICE, dictionary=intent)

    assert [i.code for i in types.choice_items(single)] == ["high", "mid"]
    offered = [code for code, _label in types.form_field(single).choices]
    assert "low" not in offered
    assert "low" not in [code for code, _label in types.form_field(multi).choices]

    # A record that holds the item still shows it and may keep it.
    assert [i.code for i in types.choice_items(single, current="low")] == ["high", "mid", "low"]
    assert "low" in [code for code, _label in types.form_field(single, current="low").choices]
    assert [i.code for i in types.choice_items(multi, current=["mid", "low"])] == [
        "high",
        "mid",
        "low",
    ]
    items = {(intent.pk, i.code): i for i in intent.items.all()}
    with translation.override("zh-hans"):
        assert types.display_value(single, "low", items=items) == "较弱"


def test_user_by_id_or_username(org):
    cf = field(FieldType.USER)
    assert types.clean_value(cf, str(org.owner.pk)) == org.owner.pk
    assert types.clean_value(cf, "colleague") == org.colleague.pk
    assert types.clean_value(cf, org.outsider) == org.outsider.pk
    assert rejects(cf, "999999")
    assert rejects(cf, "nobody")


def test_stored_values_read_back(db):
    money = field(FieldType.MONEY)
    assert types.from_storage(money, "1234.50") == Decimal("1234.50")
    assert types.display_value(money, "1234.50") == "¥1,234.50"
    when = field(FieldType.DATETIME)
    assert types.display_value(when, "2026-03-05T02:00:00+00:00") == "2026-03-05 10:00"
    with translation.override("zh-hans"):
        assert types.display_value(field(FieldType.BOOLEAN), True) == "是"


# --- Unique under concurrent saves ------------------------------------------------------------


def unique_field() -> CustomField:
    return CustomFieldFactory(key="credit_code", label="统一社会信用代码", unique=True)


def test_unique_field_second_insert_is_refused_by_the_database(db):
    unique_field()
    CustomerFactory(custom={"credit_code": "91310000MA1FL8XQ30"})
    CustomerFactory(custom={"credit_code": "91310000MA1FL8XQ31"})
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerFactory(custom={"credit_code": "91310000MA1FL8XQ30"})
    CustomerFactory(custom={})  # no value: not a duplicate
    CustomerFactory(custom={})


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL: real concurrent sessions"
)
@pytest.mark.django_db(transaction=True)
def test_unique_under_two_concurrent_saves_exactly_one_succeeds(org):
    unique_field()
    barrier = threading.Barrier(2)
    results: list[str] = []

    def save(name: str) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                Customer.objects.create(
                    name=name, owner=org.owner, custom={"credit_code": "91310000MA1FL8XQ30"}
                )
            results.append("saved")
        except IntegrityError:
            results.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=save, args=(f"客户{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["refused", "saved"]
    assert Customer.objects.filter(custom__credit_code="91310000MA1FL8XQ30").count() == 1
