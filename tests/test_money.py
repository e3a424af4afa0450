"""Money reads the same everywhere: one function (crm.money.format_money) formats it for
pages, reports, custom money fields and the board."""

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest
from django.template import Context, Template

from crm.money import format_money

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
