"""The forecast report and what every report shares (filters, scope, drill-down, export,
field permissions), on a known set of open deals."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from accounts.models import DataScope, User
from pipelines.models import Pipeline

from .factories import ContactFactory, CustomerFactory, DealFactory, UserFactory, crm_permissions

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
URL = reverse("reports:report", args=["forecast"])
# A custom period: March–April 2030, far from today, so "today" never matters.
MARCH_APRIL = {"period": "custom", "first": "2030-03-01", "last": "2030-04-30"}


@pytest.fixture
def crm(org):
    actions = ("view", "add", "change", "export")
    for name in ("owner", "colleague", "outsider"):
        setattr(
            org,
            name,
            org.set_scope(getattr(org, name), DataScope.OWN, crm_permissions(actions, TYPES)),
        )
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, crm_permissions(actions, TYPES))
    return org


def make_deal(owner, amount, close, stage_index=0):
    """An open deal of the default pipeline (零售) in its `stage_index`th open stage; from
    产品介绍 on with a contact, as the stage requires."""
    stages = Pipeline.objects.get(kind="deal", is_default=True).stages.filter(kind="open")
    customer = CustomerFactory(owner=owner)
    return DealFactory(
        title=f"{owner.username}-{amount}",
        customer=customer,
        contact=ContactFactory(customer=customer, name="联系人") if stage_index else None,
        owner=owner,
        amount=Decimal(amount),
        expected_close_date=close,
        stage=stages.order_by("order")[stage_index],
    )


@pytest.fixture
def deals(crm):
    return [
        make_deal(crm.owner, "100000", date(2030, 3, 10)),  # 意向 10%
        make_deal(crm.owner, "50000", date(2030, 4, 5), stage_index=1),  # 产品介绍 20%
        make_deal(crm.colleague, "200000", date(2030, 3, 31)),  # 10%
        make_deal(crm.outsider, "999000", date(2030, 3, 15)),  # another team
        make_deal(crm.owner, "70000", date(2030, 6, 1)),  # outside the period
    ]


def table(response) -> list[list[str]]:
    result = response.context["result"]
    return [[str(cell) for cell in row] for row in result.table.rows], [
        str(cell) for cell in result.table.totals
    ]


def test_the_rep_sees_own_deals_by_month_with_weighted_amounts(client, crm, deals):
    client.force_login(crm.owner)
    rows, totals = table(client.get(URL, MARCH_APRIL))
    assert rows == [
        ["2030-03", "1", "¥10万", "¥1万"],
        ["2030-04", "1", "¥5万", "¥1万"],
    ]
    assert totals[1:] == ["2", "¥15万", "¥2万"]


def test_the_manager_sees_the_team_and_the_admin_everyone(client, crm, deals):
    client.force_login(crm.manager)
    rows, totals = table(client.get(URL, MARCH_APRIL))
    assert rows[0] == ["2030-03", "2", "¥30万", "¥3万"]
    assert totals[1:] == ["3", "¥35万", "¥4万"]
    client.force_login(crm.admin)
    rows, totals = table(client.get(URL, MARCH_APRIL))
    assert totals[1:] == ["4", "¥134.9万", "¥13.99万"]


def test_each_count_drills_down_to_a_list_of_exactly_those_deals(client, crm, deals):
    client.force_login(crm.manager)
    result = client.get(URL, MARCH_APRIL).context["result"]
    for cell in [row[1] for row in result.table.rows] + [result.table.totals[1]]:
        listed = client.get(cell.url).context["object_list"]
        assert len(listed) == cell.value, cell.url


def test_the_owner_filter_narrows_and_drills_down_with_it(client, crm, deals):
    client.force_login(crm.manager)
    response = client.get(URL, {**MARCH_APRIL, "owner": crm.colleague.pk})
    rows, _totals = table(response)
    assert rows == [["2030-03", "1", "¥20万", "¥2万"]]
    url = response.context["result"].table.rows[0][1].url
    assert [d.title for d in client.get(url).context["object_list"]] == ["colleague-200000"]


def test_a_hidden_amount_leaves_the_page_the_chart_and_the_export(client, crm, deals):
    role = crm.owner.role
    role.field_permissions = {"deal": {"amount": "hidden"}}
    role.save()
    client.force_login(User.objects.get(pk=crm.owner.pk))
    response = client.get(URL, MARCH_APRIL)
    labels = [c.label for c in response.context["result"].table.columns]
    assert len(labels) == 2 and response.context["result"].chart is None
    assert "¥" not in response.content.decode().split("<main", 1)[1]
    exported = client.get(URL, {**MARCH_APRIL, "format": "csv"}).content.decode("utf-8-sig")
    assert "100000" not in exported


def test_exports_hold_the_table_as_numbers(client, crm, deals):
    client.force_login(crm.owner)
    response = client.get(URL, {**MARCH_APRIL, "format": "csv"})
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1] == ["2030-03", "1", "100000.00", "10000.00"]
    response = client.get(URL, {**MARCH_APRIL, "format": "xlsx"})
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[1][:2] == ("2030-03", 1) and float(values[1][2]) == 100000.0


def test_a_custom_period_needs_both_dates(client, crm, deals):
    client.force_login(crm.owner)
    response = client.get(URL, {"period": "custom", "first": "2030-03-01"})
    assert response.status_code == 200
    assert "first" in response.context["form"].errors
    assert response.context["ctx"].period.key == "month"


def test_a_role_without_deals_may_not_open_reports(client, crm):
    nobody = crm.set_scope(crm.outsider, DataScope.OWN, crm_permissions(("view",), ("customer",)))
    client.force_login(nobody)
    assert client.get(URL).status_code == 403
    # The index offers only the reports the role may open (those over customers, say).
    index = client.get(reverse("reports:index"))
    assert index.status_code == 403 or URL not in index.content.decode()
    assert client.get(reverse("reports:report", args=["nope"])).status_code in (403, 404)


def test_the_report_index_lists_the_reports(client, crm):
    client.force_login(crm.manager)
    page = client.get(reverse("reports:index")).content.decode()
    assert reverse("reports:report", args=["forecast"]) in page
