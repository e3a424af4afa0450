"""Lead and deal exports (CSV and Excel) at /leads/export/ and /deals/export/, made like
the customers' (tests/test_exports.py): the rows are the list's as filtered — with the
lead list's default of open leads — over what the role may export; the columns leave out
what the role hides (a deal's amount, and its weighted amount with it); formulas stay
inert; without the "export" permission the answer is 403 and the list has no button."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import DataScope, User

from .downloads import BOM, as_dicts, csv_table, restrict, xlsx_book
from .factories import (
    CustomerFactory,
    DealFactory,
    LeadFactory,
    UserFactory,
    crm_permissions,
    custom_field,
    item,
    stage,
)

LEADS = reverse("leads:export")
DEALS = reverse("deals:export")
TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
ACTIONS = ("view", "add", "change", "export")


def _reload(user) -> User:
    return User.objects.select_related("role", "department").get(pk=user.pk)


@pytest.fixture
def team(org):
    """The org's reps may view, add, change and export every record type in their own
    scope (pages in English); a manager sees everyone's."""
    perms = crm_permissions(ACTIONS, types=TYPES)
    for name in ("owner", "colleague", "outsider"):
        person = org.set_scope(getattr(org, name), DataScope.OWN, perms)
        person.language = "en"
        person.save(update_fields=["language"])
        setattr(org, name, _reload(person))
    manager = UserFactory(username="manager", name="张经理", department=org.team1, language="en")
    org.manager = org.set_scope(manager, DataScope.ALL, perms)
    return org


def read_csv(response) -> list[dict[str, str]]:
    assert response["Content-Disposition"].startswith("attachment;")
    return as_dicts(csv_table(response))


def header_of(response) -> list[str]:
    content = response.content
    return next(csv.reader(io.StringIO(content[len(BOM) :].decode("utf-8"))))


def read_xlsx(response):
    return xlsx_book(response).active


def xlsx_rows(response) -> list[dict]:
    sheet = read_xlsx(response)
    header, *rows = sheet.iter_rows()
    labels = [cell.value for cell in header]
    return [dict(zip(labels, row, strict=True)) for row in rows]


@pytest.fixture
def deals(team):
    mine = CustomerFactory(name="上海恒信机械设备有限公司", owner=team.owner)
    theirs = CustomerFactory(name="北京远景科技有限公司", owner=team.outsider)
    return {
        "quote": DealFactory(
            owner=team.owner,
            customer=mine,
            title="数控机床采购",
            stage=stage("零售", "报价"),
            amount=Decimal("356000.50"),
            expected_close_date=date(2026, 6, 30),
        ),
        "won": DealFactory(
            owner=team.owner,
            customer=mine,
            title="年度框架协议",
            stage=stage("零售", "赢单"),
            amount=Decimal("1280000"),
        ),
        "outsider": DealFactory(
            owner=team.outsider,
            customer=theirs,
            title="外部商机",
            stage=stage("零售", "报价"),
            amount=Decimal("99000"),
        ),
    }


@pytest.fixture
def leads(team):
    return {
        "open": LeadFactory(
            owner=team.owner,
            company_name="杭州云帆贸易",
            person_name="陈先生",
            phone="+8613800138000",
            source=item("lead_source", "website_form"),
        ),
        "lost": LeadFactory(
            owner=team.owner,
            company_name="宁波海港物流",
            stage=stage("线索", "无效线索"),
        ),
        "outsider": LeadFactory(owner=team.outsider, company_name="外部线索公司"),
        "pool": LeadFactory(owner=None, company_name="未分配线索公司"),
    }


# --- Scope ------------------------------------------------------------------------------------


def test_an_outsider_exports_none_of_the_owners_deals(client, team, deals):
    client.force_login(team.outsider)
    titles = [row["Title"] for row in read_csv(client.get(DEALS, {"format": "csv"}))]
    assert titles == ["外部商机"]
    # Whatever the filters ask for.
    for params in ({"q": "数控"}, {"status": "won"}, {"stage": deals["quote"].stage_id}):
        exported = [row["Title"] for row in read_csv(client.get(DEALS, params))]
        assert "数控机床采购" not in exported and "年度框架协议" not in exported


def test_an_outsider_exports_none_of_the_owners_leads(client, team, leads):
    client.force_login(team.outsider)
    companies = [row["Company"] for row in read_csv(client.get(LEADS, {"status": "all"}))]
    assert companies == ["外部线索公司"]


def test_the_owner_exports_her_own_and_a_manager_everyones(client, team, deals, leads):
    client.force_login(team.owner)
    titles = sorted(row["Title"] for row in read_csv(client.get(DEALS)))
    assert titles == sorted(["数控机床采购", "年度框架协议"])
    client.force_login(team.manager)
    titles = sorted(row["Title"] for row in read_csv(client.get(DEALS)))
    assert titles == sorted(["数控机床采购", "年度框架协议", "外部商机"])
    companies = sorted(row["Company"] for row in read_csv(client.get(LEADS)))
    assert companies == sorted(["杭州云帆贸易", "外部线索公司", "未分配线索公司"])


def test_below_scope_all_unassigned_leads_are_not_exported(client, team, leads):
    """The list shows unassigned leads to every rep; exporting takes the "export" rule
    of the access module, and the pool is not in a rep's data scope."""
    client.force_login(team.owner)
    assert "未分配线索公司" not in [row["Company"] for row in read_csv(client.get(LEADS))]
    assert read_csv(client.get(LEADS, {"owner": "pool"})) == []


# --- The list's filters ----------------------------------------------------------------------


def test_the_deal_export_holds_the_lists_filtered_rows_in_its_order(client, team, deals):
    client.force_login(team.owner)
    won = read_csv(client.get(DEALS, {"status": "won"}))
    assert [row["Title"] for row in won] == ["年度框架协议"]
    quoted = read_csv(client.get(DEALS, {"stage": deals["quote"].stage_id}))
    assert [row["Title"] for row in quoted] == ["数控机床采购"]
    by_amount = read_csv(client.get(DEALS, {"sort": "-amount"}))
    assert [row["Title"] for row in by_amount] == ["年度框架协议", "数控机床采购"]
    listed = client.get(reverse("deals:list"), {"sort": "-amount"}).context["object_list"]
    assert [d.title for d in listed] == [row["Title"] for row in by_amount]


def test_the_lead_export_shows_open_leads_unless_a_status_is_asked_for(client, team, leads):
    """As the lead list does: without a status, open leads only."""
    client.force_login(team.owner)
    assert [row["Company"] for row in read_csv(client.get(LEADS))] == ["杭州云帆贸易"]
    lost = read_csv(client.get(LEADS, {"status": "lost"}))
    assert [row["Company"] for row in lost] == ["宁波海港物流"]
    every = read_csv(client.get(LEADS, {"status": "all", "sort": "name"}))
    assert [row["Company"] for row in every] == sorted(["杭州云帆贸易", "宁波海港物流"])
    # The list shows the same default (and the unassigned leads, which a rep may see
    # but not export).
    listed = client.get(reverse("leads:list")).context["object_list"]
    assert sorted(lead.company_name for lead in listed) == sorted(
        ["杭州云帆贸易", "未分配线索公司"]
    )


def test_filters_with_errors_send_back_to_the_list(client, team, deals):
    client.force_login(team.owner)
    response = client.get(DEALS, {"format": "csv", "amount_min": "abc"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("deals:list"))


# --- Columns -----------------------------------------------------------------------------------


def test_deal_columns_read_as_the_pages_do(client, team, deals):
    client.force_login(team.owner)
    row = next(r for r in read_csv(client.get(DEALS)) if r["Title"] == "数控机床采购")
    assert row["Customer"] == "上海恒信机械设备有限公司"
    assert row["Amount (CNY)"] == "356000.50"
    assert row["Probability (%)"] == "50"
    assert row["Weighted"] == "178000.25"
    assert row["Expected close date"] == "2026-06-30"
    assert row["Stage"] == "Quotation"
    assert row["Pipeline"] == "Retail"
    assert row["Status"] == "Open"
    assert row["Owner"] == team.owner.get_full_name()
    assert row["Department"] == "销售部 / 销售一部"


def test_lead_columns_read_as_the_pages_do(client, team, leads):
    client.force_login(team.owner)
    (row,) = read_csv(client.get(LEADS))
    assert row["Company"] == "杭州云帆贸易"
    assert row["Name"] == "陈先生"
    assert row["Phone"] == "138 0013 8000"
    assert row["Source"] == "Website form"
    assert row["Stage"] == leads["open"].stage.name_en
    assert row["Status"] == "Open"
    client.force_login(team.manager)
    pool = next(r for r in read_csv(client.get(LEADS)) if r["Company"] == "未分配线索公司")
    assert pool["Owner"] == "Unassigned"


def test_xlsx_has_amounts_as_numbers_and_phones_as_text(client, team, deals, leads):
    client.force_login(team.owner)
    by_title = {r["Title"].value: r for r in xlsx_rows(client.get(DEALS, {"format": "xlsx"}))}
    quote = by_title["数控机床采购"]
    assert quote["Amount (CNY)"].value == Decimal("356000.5")
    assert quote["Amount (CNY)"].number_format == "#,##0.00"
    assert quote["Expected close date"].is_date
    (lead,) = xlsx_rows(client.get(LEADS, {"format": "xlsx"}))
    assert lead["Phone"].value == "138 0013 8000"
    assert lead["Phone"].data_type == "s"


def test_a_hidden_amount_is_no_column_nor_its_weighted_amount(client, team, deals):
    owner = restrict(team.owner, "deal", amount="hidden")
    client.force_login(owner)
    for fmt in ("csv", "xlsx"):
        response = client.get(DEALS, {"format": fmt})
        if fmt == "csv":
            header = header_of(response)
        else:
            header = [cell.value for cell in next(read_xlsx(response).iter_rows())]
        assert "Title" in header
        assert "Amount (CNY)" not in header
        assert "Weighted" not in header
    assert b"356000" not in client.get(DEALS).content


def test_hidden_lead_fields_and_custom_fields_are_left_out(client, team, leads):
    custom_field("budget", "money", label="预算", label_en="Budget", record_type="lead")
    lead = leads["open"]
    lead.custom = {"budget": "50000.00"}
    lead.save(update_fields=["custom"])
    client.force_login(team.owner)
    (row,) = read_csv(client.get(LEADS))
    assert row["Budget"] == "50000.00"
    owner = restrict(team.owner, "lead", phone="hidden", cf_budget="hidden")
    client.force_login(owner)
    header = header_of(client.get(LEADS))
    assert "Phone" not in header and "Budget" not in header
    assert "Company" in header


def test_formulas_are_kept_inert(client, team):
    customer = CustomerFactory(name="客户", owner=team.owner)
    DealFactory(owner=team.owner, customer=customer, title='=HYPERLINK("http://evil.example","x")')
    LeadFactory(owner=team.owner, company_name="@SUM(A1:A9)", person_name="-2+3")
    client.force_login(team.owner)
    (deal,) = read_csv(client.get(DEALS))
    assert deal["Title"] == '\'=HYPERLINK("http://evil.example","x")'
    (lead,) = read_csv(client.get(LEADS))
    assert lead["Company"] == "'@SUM(A1:A9)"
    assert lead["Name"] == "'-2+3"
    (sheet_deal,) = xlsx_rows(client.get(DEALS, {"format": "xlsx"}))
    assert sheet_deal["Title"].data_type == "s"
    assert sheet_deal["Title"].value == '=HYPERLINK("http://evil.example","x")'


def test_file_names_name_the_records(client, team, deals, leads):
    client.force_login(team.owner)
    assert 'filename="Deals-' in client.get(DEALS)["Content-Disposition"]
    assert 'filename="Leads-' in client.get(LEADS, {"format": "xlsx"})["Content-Disposition"]


# --- Permission and the button ------------------------------------------------------------------


def test_without_the_export_permission_403_and_no_button(client, team, deals, leads):
    reader = team.set_scope(
        team.owner, DataScope.ALL, crm_permissions(("view", "add", "change"), types=TYPES)
    )
    client.force_login(reader)
    assert client.get(DEALS).status_code == 403
    assert client.get(LEADS, {"format": "xlsx"}).status_code == 403
    for url in (reverse("leads:list"), reverse("deals:list")):
        page = client.get(url).content.decode()
        assert 'data-testid="export"' not in page
        assert "/export/" not in page


def test_export_of_one_type_is_not_the_others(client, team, deals):
    """A role may export deals and not leads."""
    perms = [*crm_permissions(("view", "add", "change"), types=TYPES), "deal.export"]
    seller = team.set_scope(team.owner, DataScope.OWN, perms)
    client.force_login(seller)
    assert client.get(DEALS).status_code == 200
    assert client.get(LEADS).status_code == 403


def test_the_buttons_carry_the_lists_filters(client, team, deals, leads):
    client.force_login(team.owner)
    page = client.get(reverse("deals:list"), {"status": "won", "page": 1}).content.decode()
    assert 'data-testid="export"' in page
    assert f"{DEALS}?format=csv&amp;status=won" in page
    assert f"{DEALS}?format=xlsx&amp;status=won" in page
    leads_page = client.get(reverse("leads:list")).content.decode()
    assert f'href="{LEADS}?format=xlsx"' in leads_page


def test_anonymous_users_are_sent_to_sign_in(client, db):
    for url in (LEADS, DEALS):
        response = client.get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


# --- Queries do not grow with rows ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_query_count_does_not_grow_with_rows(client, team, fmt, django_assert_max_num_queries):
    customer = CustomerFactory(name="批量客户", owner=team.owner)

    def make(count: int) -> None:
        for n in range(count):
            DealFactory(owner=team.owner, customer=customer, title=f"批量商机{n}")
            LeadFactory(owner=team.owner, company_name=f"批量线索{n}")

    client.force_login(team.owner)
    make(5)
    for url in (DEALS, LEADS):
        with CaptureQueriesContext(connection) as small:
            assert client.get(url, {"format": fmt}).status_code == 200
        make(40)
        with django_assert_max_num_queries(len(small)):
            assert client.get(url, {"format": fmt}).status_code == 200
