"""Report exports (CSV and Excel) go through the record exports' writer (crm.exports):
text that a spreadsheet would run as a formula is kept inert (names, department paths,
dictionary labels, lost reasons), numbers stay numbers, and sheet titles are ones Excel
accepts — whatever the language and whatever the departments and people are called."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from crm import exports

from .downloads import csv_table as read_csv
from .downloads import xlsx_book as read_xlsx
from .test_report_funnel import OCTOBER, crm, history, reason, source  # noqa: F401

ACTIVITY = reverse("reports:report", args=["activity"])
FUNNEL = reverse("reports:report", args=["funnel"])
WIN_RATE = reverse("reports:report", args=["win-rate"])
MARCH = {"period": "custom", "first": "2025-03-01", "last": "2025-03-31"}
AUTUMN = {"period": "custom", "first": "2025-10-01", "last": "2025-11-30"}
FORMULA = ("=", "+", "-", "@")
EVIL = '=HYPERLINK("http://evil.example","x")'


def assert_inert_csv(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA) or exports.PLAIN_NUMBER.fullmatch(cell), cell


def xlsx_cells(book) -> list:
    return [cell for sheet in book.worksheets for row in sheet.iter_rows() for cell in row]


def assert_valid_titles(book) -> None:
    titles = book.sheetnames
    assert len({t.lower() for t in titles}) == len(titles)
    for title in titles:
        assert title and len(title) <= 31
        assert not set(title) & set(":\\/?*[]")


# --- sheet titles -----------------------------------------------------------------------


def test_the_activity_report_exports_to_excel_in_english(admin_client):
    """Its tables' English titles have colons ("Week by week: the team"), which Excel
    does not allow in a sheet's name."""
    book = read_xlsx(admin_client.get(ACTIVITY, {**MARCH, "format": "xlsx"}))
    assert book.sheetnames == [
        "Activity",
        "Week by week the team",
        "Customers with no follow-up in",
        "Public pool claims and returns",
        "Per rep and week",
    ]
    assert_valid_titles(book)
    assert [c.value for c in next(book["Activity"].iter_rows())][:2] == ["Rep", "Calls"]


@pytest.mark.parametrize("filtered", ["department", "owner"])
def test_a_department_or_rep_named_with_slashes_exports_in_chinese(client, org, filtered):
    """The activity report's week table is titled with the department or rep chosen."""
    org.team1.name = "销售/一部?"
    org.team1.save(update_fields=["name"])
    org.owner.name = "王[芳]*"
    org.owner.save(update_fields=["name"])
    org.admin.language = "zh-hans"
    org.admin.save(update_fields=["language"])
    client.force_login(org.admin)
    chosen = org.team1 if filtered == "department" else org.owner
    query = {**MARCH, filtered: chosen.pk}
    book = read_xlsx(client.get(ACTIVITY, {**query, "format": "xlsx"}))
    assert_valid_titles(book)
    titled, sheet = (
        ("销售/一部?", "销售 一部") if filtered == "department" else ("王[芳]*", "王 芳")
    )
    assert book.sheetnames[1] == f"按周统计：{sheet}"
    # The CSV has the title as it is.
    rows = read_csv(client.get(ACTIVITY, {**query, "format": "csv"}))
    assert [f"按周统计：{titled}"] in rows


# --- formulas ---------------------------------------------------------------------------


@pytest.fixture
def named(crm, history):  # noqa: F811
    """The funnel tests' deals, their people, departments, sources and lost reasons named
    like formulas."""
    for person, name in ((crm.owner, EVIL), (crm.outsider, "@SUM(1+1)")):
        person.name = name
        person.save(update_fields=["name"])
    crm.sales.name = "-5%"
    crm.sales.save(update_fields=["name"])
    for item, label in ((source("website"), "+86 热线"), (reason("price"), "=1+2")):
        item.label = item.label_en = label
        item.save(update_fields=["label", "label_en"])
    return crm


def test_report_csv_keeps_formulas_inert(client, named):
    client.force_login(named.admin)
    rows = read_csv(client.get(WIN_RATE, {**AUTUMN, "format": "csv"}))
    cells = {cell for row in rows for cell in row}
    assert {"'" + EVIL, "'@SUM(1+1)", "'-5% / 销售一部", "'+86 热线"} <= cells
    assert_inert_csv(rows)
    # Numbers are written as they are: counts, shares, amounts.
    owner = next(row for row in rows if row[0] == "'" + EVIL)
    assert owner[1:4] == ["2", "2", "50.0"]
    rows = read_csv(client.get(FUNNEL, {**OCTOBER, "format": "csv"}))
    assert "'=1+2" in {cell for row in rows for cell in row}
    assert_inert_csv(rows)


def test_report_xlsx_has_text_cells_not_formulas_and_numbers_as_numbers(client, named):
    client.force_login(named.admin)
    for url, query, names in (
        (WIN_RATE, AUTUMN, {EVIL, "@SUM(1+1)", "-5% / 销售一部", "+86 热线"}),
        (FUNNEL, OCTOBER, {"=1+2"}),
    ):
        book = read_xlsx(client.get(url, {**query, "format": "xlsx"}))
        cells = xlsx_cells(book)
        assert names <= {cell.value for cell in cells}
        for cell in cells:
            if isinstance(cell.value, str):
                assert cell.data_type == "s", (cell.coordinate, cell.value)
    book = read_xlsx(client.get(WIN_RATE, {**AUTUMN, "format": "xlsx"}))
    owner = next(row for row in book.active.iter_rows() if row[0].value == EVIL)
    assert [c.value for c in owner[1:4]] == [2, 2, 50.0]
    assert all(c.data_type == "n" for c in owner[1:6])


# --- the writer -------------------------------------------------------------------------


def test_several_tables_in_one_csv_each_under_its_title():
    content = exports.write_sheets(
        "csv",
        [
            exports.Sheet("Main", ["Name", "=Label"], [["-5%", -5], ["@x", Decimal("1.50")]]),
            exports.Sheet("=Second", ["+A"], [[None], ["+86 138 0013 8000"]]),
        ],
    )
    assert content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows == [
        ["Name", "'=Label"],
        ["'-5%", "-5"],
        ["'@x", "1.50"],
        [],
        ["'=Second"],
        ["'+A"],
        [""],
        ["+86 138 0013 8000"],  # a phone number, as the record exports leave it
    ]


def test_several_tables_in_one_workbook_one_sheet_each():
    long = "A title far longer than thirty-one characters"
    content = exports.write_sheets(
        "xlsx",
        [
            exports.Sheet("By rep: week", ["Name", "N"], [["=1+1", -5], ["#N/A", 2.5]]),
            exports.Sheet(long, ["A"], [["x"]]),
            exports.Sheet(long + " again", ["A"], [["y"]]),
            exports.Sheet("[/]", ["A"], []),
            exports.Sheet("", ["A"], []),
            exports.Sheet("History", ["A"], []),
        ],
    )
    book = load_workbook(io.BytesIO(content))
    assert book.sheetnames == [
        "By rep week",
        "A title far longer than thirty-",
        "A title far longer than thi (2)",
        "Sheet1",
        "Sheet1 (2)",
        "History (2)",
    ]
    assert_valid_titles(book)
    first = book["By rep week"]
    header, formula, error = (list(row) for row in first.iter_rows())
    assert [c.value for c in header] == ["Name", "N"] and header[0].font.b
    assert (formula[0].value, formula[0].data_type) == ("=1+1", "s")
    assert (error[0].value, error[0].data_type) == ("#N/A", "s")
    assert (formula[1].value, formula[1].data_type) == (-5, "n")
    assert (error[1].value, error[1].data_type) == (2.5, "n")
