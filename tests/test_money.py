"""Money reads the same everywhere: one function (crm.money.format_money) formats it for
pages, reports, custom money fields and the board."""

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
from django.template import Context, Template

from crm.money import format_money, format_money_compact, money_html

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "value, text",
    [
        (Decimal("1234.5"), "¥1,234.50"),
        (Decimal("3500000.505"), "¥3,500,000.50"),  # half to even, as Decimal rounds
        (120000, "¥120,000.00"),
        ("8", "¥8.00"),
        (0, "¥0.00"),
        (None, "¥0.00"),
        (Decimal("-50"), "¥-50.00"),
    ],
)
def test_an_amount_reads_with_the_sign_separators_and_cents(value, text):
    assert format_money(value) == text


def test_the_board_shows_whole_yuan():
    assert format_money(Decimal("12000.49"), places=0) == "¥12,000"


def test_a_text_that_is_no_number_is_the_callers_to_handle():
    with pytest.raises(InvalidOperation):
        format_money("abc")


def test_the_template_filter_formats_alike_and_never_fails():
    template = Template("{% load crm_ui %}{{ amount|money }}|{{ bad|money }}")
    assert template.render(Context({"amount": Decimal("99.9"), "bad": "n/a"})) == "¥99.90|n/a"


def test_no_app_formats_money_on_its_own():
    """A new page that formats an amount with an f-string or `floatformat` would read
    differently from the rest (the search row once showed 1200.00 in Chinese)."""
    pattern = re.compile(r"[¥￥]\{|:,\.\d+f\}|floatformat|intcomma")
    found = []
    for path in [
        *ROOT.glob("accounts/**/*.py"),
        *ROOT.glob("crm/**/*.py"),
        *ROOT.glob("pipelines/**/*.py"),
        *ROOT.glob("reports/**/*.py"),
        *ROOT.glob("templates/**/*.html"),
    ]:
        if path == ROOT / "crm" / "money.py" or "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


# --- Compact amounts: lists, cards, boards, reports -----------------------------------


@pytest.mark.parametrize(
    "value, chinese, english",
    [
        (None, "¥0", "¥0"),  # no amount counts as nothing, as in format_money
        (0, "¥0", "¥0"),
        (Decimal("0.49"), "¥0", "¥0"),
        (Decimal("-0.4"), "¥0", "¥0"),  # no "¥-0"
        (Decimal("8500"), "¥8,500", "¥8,500"),
        (Decimal("8500.50"), "¥8,501", "¥8,501"),  # whole yuan, half up (四舍五入)
        (9999, "¥9,999", "¥9,999"),
        (Decimal("9999.49"), "¥9,999", "¥9,999"),
        (Decimal("9999.5"), "¥1万", "¥10K"),  # rounds up into the next unit
        (10000, "¥1万", "¥10K"),
        (12345, "¥1.23万", "¥12.35K"),  # at most two decimals
        (Decimal("936000"), "¥93.6万", "¥936K"),  # trailing zeros dropped
        (Decimal("999999"), "¥100万", "¥1M"),
        (12345678, "¥1,234.57万", "¥12.35M"),
        (99990000, "¥9,999万", "¥99.99M"),
        (99999999, "¥1亿", "¥100M"),  # not ¥10,000万
        (Decimal("1656000000"), "¥16.56亿", "¥1.66B"),
        (Decimal("-936000"), "¥-93.6万", "¥-936K"),  # the sign where format_money puts it
        (-12000, "¥-1.2万", "¥-12K"),
        ("8", "¥8", "¥8"),
    ],
)
def test_a_compact_amount_reads_as_chinese_business_software_writes_it(value, chinese, english):
    assert format_money_compact(value, language="zh-hans") == chinese
    assert format_money_compact(value, language="en") == english


def test_the_compact_form_follows_the_active_language():
    from django.utils import translation

    with translation.override("zh-hans"):
        assert format_money_compact(936000) == "¥93.6万"
    with translation.override("en"):
        assert format_money_compact(936000) == "¥936K"


def test_a_text_that_is_no_number_is_the_callers_to_handle_compact_too():
    with pytest.raises(InvalidOperation):
        format_money_compact("abc")


def test_a_compact_display_carries_the_exact_amount_in_its_title():
    html = money_html(Decimal("1656000000"), language="zh-hans")
    assert html == '<span class="app-money" title="¥1,656,000,000.00">¥16.56亿</span>'
    assert money_html("n/a") == "n/a"
    assert money_html("<b>") == "&lt;b&gt;"


def test_the_compact_template_filter_never_fails():
    from django.utils import translation

    template = Template("{% load crm_ui %}{{ amount|money_compact }}|{{ bad|money_compact }}")
    with translation.override("zh-hans"):
        html = template.render(Context({"amount": Decimal("936000"), "bad": "n/a"}))
    assert html == '<span class="app-money" title="¥936,000.00">¥93.6万</span>|n/a'


def test_a_money_column_of_a_list_is_compact_with_the_exact_amount_as_title():
    from types import SimpleNamespace

    from django.utils import translation

    from crm.fields.query import display_rows
    from crm.models import CustomField, FieldType

    revenue = CustomField(key="revenue", field_type=FieldType.MONEY, label="年营业额")
    staff = CustomField(key="staff", field_type=FieldType.INTEGER, label="员工人数")
    specs = [SimpleNamespace(custom=revenue), SimpleNamespace(custom=staff)]
    row, blank = (
        SimpleNamespace(custom={"revenue": "936000.00", "staff": 88}),
        SimpleNamespace(custom={}),
    )
    with translation.override("zh-hans"):
        display_rows([row, blank], specs, items_by_code={}, users={})
    assert row.custom_cells == [
        '<span class="app-money" title="¥936,000.00">¥93.6万</span>',
        "88",
    ]
    assert blank.custom_cells == ["", ""]
