"""The win-rate report on the funnel tests' known history (tests/test_report_funnel.py):
won / (won + lost) of the deals closed in the period by owner, department, customer
source, pipeline and month; median days from creation to the win; average won amount;
for a rep, a manager and an admin; every count drills down to a deal list of exactly
that many deals."""

from __future__ import annotations

import pytest
from django.urls import reverse

from .factories import UserFactory
from .test_report_funnel import crm, history, listed, rows, source  # noqa: F401

pytestmark = pytest.mark.usefixtures("english")

URL = reverse("reports:report", args=["win-rate"])
# October and November 2025: A (18 days), E (22) and F (40) won in October; B and D lost
# in October, G in November.
AUTUMN = {"period": "custom", "first": "2025-10-01", "last": "2025-11-30"}


def report(client, user, **params):
    client.force_login(user)
    response = client.get(URL, {**AUTUMN, **params})
    assert response.status_code == 200
    return response.context["result"]


def by_label(table) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in rows(table)}


def extra(result, title: str):
    return dict(result.extra_tables)[title]


def test_the_admin_sees_every_closed_deal(client, crm, history):  # noqa: F811
    result = report(client, crm.admin)
    # owner: won, lost, win rate, median days to win, average won amount
    assert by_label(result.table) == {
        "王芳": ["2", "2", "50.0%", "29.0", "¥65K"],
        "赵强": ["0", "1", "0.0%", "—", "—"],
        "刘洋": ["1", "0", "100.0%", "22.0", "¥50K"],
    }
    assert [str(c) for c in result.table.totals] == [
        "Total",
        "3",
        "3",
        "50.0%",
        "22.0",
        "¥60K",
    ]
    assert [(label, str(cell)) for label, cell in result.headline] == [
        ("Won", "3"),
        ("Lost", "3"),
        ("Win rate", "50.0%"),
        ("Median days to win", "22.0"),
        ("Average won amount", "¥60K"),
    ]
    # 销售一部's figures include 华东's.
    assert by_label(extra(result, "By department")) == {
        "销售部 / 销售一部": ["2", "3", "40.0%", "29.0", "¥65K"],
        "销售部 / 销售一部 / 销售一部-华东": ["0", "1", "0.0%", "—", "—"],
        "销售部 / 销售二部": ["1", "0", "100.0%", "22.0", "¥50K"],
    }
    assert by_label(extra(result, "By customer source")) == {
        "Website": ["1", "1", "50.0%", "18.0", "¥100K"],
        "Referral": ["1", "0", "100.0%", "40.0", "¥30K"],
        "No source": ["1", "2", "33.3%", "22.0", "¥50K"],
    }
    assert rows(extra(result, "By pipeline")) == [
        ["Retail", "2", "3", "40.0%", "20.0", "¥75K"],
        ["Wholesale", "1", "0", "100.0%", "40.0", "¥30K"],
    ]
    assert rows(extra(result, "By month")) == [
        ["2025-10", "3", "2", "60.0%", "22.0", "¥60K"],
        ["2025-11", "0", "1", "0.0%", "—", "—"],
    ]
    assert result.chart["data"]["datasets"][0]["data"] == [
        {"王芳": 2, "赵强": 0, "刘洋": 1}[label] for label in result.chart["data"]["labels"]
    ]


def test_the_manager_sees_the_department_and_below(client, crm, history):  # noqa: F811
    result = report(client, crm.manager)
    assert by_label(result.table) == {
        "王芳": ["2", "2", "50.0%", "29.0", "¥65K"],
        "赵强": ["0", "1", "0.0%", "—", "—"],
    }
    assert [str(c) for c in result.table.totals][1:] == ["2", "3", "40.0%", "29.0", "¥65K"]
    assert list(by_label(extra(result, "By department"))) == [
        "销售部 / 销售一部",
        "销售部 / 销售一部 / 销售一部-华东",
    ]


def test_the_rep_sees_own_deals_and_filters_narrow(client, crm, history):  # noqa: F811
    result = report(client, crm.owner)
    assert by_label(result.table) == {"王芳": ["2", "2", "50.0%", "29.0", "¥65K"]}
    assert rows(extra(result, "By month")) == [
        ["2025-10", "2", "1", "66.7%", "29.0", "¥65K"],
        ["2025-11", "0", "1", "0.0%", "—", "—"],
    ]
    # The pipeline filter; October only.
    wholesale = history["F"].pipeline
    result = report(client, crm.admin, pipeline=wholesale.pk)
    assert by_label(result.table) == {"王芳": ["1", "0", "100.0%", "40.0", "¥30K"]}
    result = report(client, crm.admin, first="2025-10-01", last="2025-10-31")
    assert [str(c) for c in result.table.totals][1:4] == ["3", "2", "60.0%"]


def test_a_hidden_amount_or_source_leaves_them_out(client, crm, history):  # noqa: F811
    role = crm.owner.role
    role.field_permissions = {"deal": {"amount": "hidden"}, "customer": {"source": "hidden"}}
    role.save()
    client.force_login(crm.owner)
    response = client.get(URL, AUTUMN)
    result = response.context["result"]
    assert [c.key for c in result.table.columns] == ["group", "won", "lost", "rate", "cycle"]
    assert "Average won amount" not in [label for label, _cell in result.headline]
    assert "By customer source" not in dict(result.extra_tables)
    assert "¥" not in client.get(URL, {**AUTUMN, "format": "csv"}).content.decode()


@pytest.mark.parametrize("who", ["owner", "manager", "admin"])
def test_every_count_drills_down_to_exactly_that_many_deals(client, crm, history, who):  # noqa: F811
    result = report(client, getattr(crm, who))
    tables = [result.table] + [t for _title, t in result.extra_tables]
    # Every won and lost count links to its list.
    for table in tables:
        for row in [*table.rows, table.totals or []]:
            assert all(cell.url for cell in row[1:3]), [str(c) for c in row]
    cells = [c for t in tables for row in [*t.rows, t.totals or []] for c in row if c.url]
    cells += [cell for _label, cell in result.headline if cell.url]
    assert len(cells) >= 12
    for cell in cells:
        assert len(listed(client, cell.url)) == cell.value, cell.url


def test_the_drill_down_lists_the_deals_behind_the_figure(client, crm, history):  # noqa: F811
    result = report(client, crm.admin)
    owner_row = next(r for r in result.table.rows if str(r[0]) == "王芳")
    assert listed(client, owner_row[1].url) == ["A", "F"]
    assert listed(client, owner_row[2].url) == ["B", "G"]
    team1 = next(r for r in extra(result, "By department").rows if str(r[0]).endswith("销售一部"))
    assert listed(client, team1[2].url) == ["B", "D", "G"]
    website = next(r for r in extra(result, "By customer source").rows if str(r[0]) == "Website")
    assert f"source={source('website').pk}" in website[1].url
    assert listed(client, website[1].url) == ["A"]
    november = extra(result, "By month").rows[1]
    assert "closed_after=2025-11-01&closed_before=2025-11-30" in november[2].url
    assert listed(client, november[2].url) == ["G"]
    # The "no source" row lists the deals whose customer has none.
    no_source = next(
        r for r in extra(result, "By customer source").rows if str(r[0]) == "No source"
    )
    assert "missing=source" in no_source[1].url
    assert listed(client, no_source[1].url) == ["E"]
    assert listed(client, no_source[2].url) == ["D", "G"]
    # The viewer's own row: the list knows them as "me".
    result = report(client, crm.owner)
    assert "owner=me" in result.table.rows[0][1].url


def test_the_query_count_does_not_grow_with_the_deals(client, crm, history):  # noqa: F811
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from .test_report_funnel import at, story

    client.force_login(crm.manager)
    client.get(URL, AUTUMN)
    with CaptureQueriesContext(connection) as before:
        client.get(URL, AUTUMN)
    for n in range(5):
        story(
            crm.sub_member, f"more{n}", [("意向", at(10, 3)), ("赢单", at(10, 9 + n))], amount="10"
        )
    with CaptureQueriesContext(connection) as after:
        result = client.get(URL, AUTUMN).context["result"]
    assert [str(c) for c in result.table.totals][1:3] == ["7", "3"]
    assert len(after) == len(before)


def test_deals_of_an_owner_without_a_department_have_their_row_and_list(client, crm, history):  # noqa: F811
    from .test_report_funnel import at, story

    nomad = crm.set_scope(
        UserFactory(username="nomad", name="无部门"), "own", crm.owner.role.permissions
    )
    story(nomad, "N", [("意向", at(10, 1)), ("赢单", at(10, 3))], amount="1000")
    result = report(client, crm.admin)
    row = next(r for r in extra(result, "By department").rows if str(r[0]) == "No department")
    assert [str(c) for c in row[1:3]] == ["1", "0"]
    assert "missing=department" in row[1].url
    assert listed(client, row[1].url) == ["N"]
