"""The funnel report on a known stage history (deals moved through the stages on known
dates, won and lost): entered per stage, conversion to the next stage, median and 90th
percentile days in a stage, drop-off with lost reasons; for a rep, a manager and an
admin; every count drills down to a deal list of exactly that many deals; the deal
list's new filters (entered a stage, lost from a stage, closed, customer source)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.models import DictionaryItem
from pipelines import services
from pipelines.models import Deal, Stage, StageHistory, StageKind
from reports.library.funnel import percentile

from .factories import (
    ContactFactory,
    CustomerFactory,
    UserFactory,
    crm_permissions,
)

pytestmark = pytest.mark.usefixtures("english")

TYPES = ("customer", "contact", "activity", "task", "lead", "deal")
URL = reverse("reports:report", args=["funnel"])
DEALS = reverse("deals:list")
OCTOBER = {"period": "custom", "first": "2025-10-01", "last": "2025-10-31"}


def at(month: int, day: int, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime(2025, month, day, hour))


def stage(name: str, pipeline: str = "零售") -> Stage:
    return Stage.objects.get(pipeline__name=pipeline, name=name)


def reason(code: str) -> DictionaryItem:
    return DictionaryItem.objects.of("lost_reason").get(code=code)


def source(code: str) -> DictionaryItem:
    return DictionaryItem.objects.of("customer_source").get(code=code)


def story(owner, title, steps, *, pipeline="零售", amount="0", customer_source=None) -> Deal:
    """A deal made and moved through the services, then dated: steps are (stage name,
    when) or (stage name, when, lost reason code); the first is where it was created."""
    customer = CustomerFactory(owner=owner, source=customer_source)
    contact = ContactFactory(customer=customer, name="联系人")
    deal = Deal(
        title=title,
        customer=customer,
        contact=contact,
        owner=owner,
        amount=Decimal(amount),
        expected_close_date=steps[-1][1].date(),
        pipeline=stage(steps[0][0], pipeline).pipeline,
        stage=stage(steps[0][0], pipeline),
    )
    services.create_deal(deal=deal, by=owner)
    for step in steps[1:]:
        services.move_to_stage(
            record=deal,
            stage=stage(step[0], pipeline),
            by=owner,
            lost_reason=reason(step[2]) if len(step) > 2 else None,
        )
    moves = list(StageHistory.objects.filter(record_type="deal", record_id=deal.pk).order_by("id"))
    assert len(moves) == len(steps)
    previous = None
    for move, step in zip(moves, steps, strict=True):
        seconds = int((step[1] - previous).total_seconds()) if previous else 0
        StageHistory.objects.filter(pk=move.pk).update(
            moved_at=step[1], seconds_in_previous=seconds
        )
        previous = step[1]
    deal.refresh_from_db()
    Deal.objects.filter(pk=deal.pk).update(
        created_at=steps[0][1],
        stage_entered_at=steps[-1][1],
        closed_at=steps[-1][1] if deal.stage.kind != StageKind.OPEN else None,
    )
    return deal


@pytest.fixture
def crm(org):
    """owner, colleague (销售一部), sub_member (华东, under 销售一部) and outsider (销售二部)
    see their own deals; the manager of 销售一部 sees the department and the ones below."""
    actions = ("view", "add", "change", "export")
    for name in ("owner", "colleague", "sub_member", "outsider"):
        user = getattr(org, name)
        setattr(org, name, org.set_scope(user, DataScope.OWN, crm_permissions(actions, TYPES)))
    manager = UserFactory(username="manager", name="张经理", department=org.team1)
    org.manager = org.set_scope(manager, DataScope.DEPARTMENT_TREE, crm_permissions(actions, TYPES))
    for name in ("owner", "sub_member", "outsider", "manager", "admin"):
        user = getattr(org, name)
        user.language = "en"  # pages in English, as asserted
        user.save(update_fields=["language"])
    return org


@pytest.fixture
def history(crm):
    """October 2025 in the 零售 pipeline (and a few moves around it):

    A owner      意向 10-02, 产品介绍 10-05, 产生兴趣 10-12, 赢单 10-20     (¥100,000)
    B owner      意向 09-25, 产品介绍 10-03, 输单 10-10 (price)
    C owner      意向 10-04, 产品介绍 10-06, 产生兴趣 11-02 (open)
    D sub_member 意向 10-01, 输单 10-15 (competitor)
    E outsider   意向 10-08, 产品介绍 10-09, 赢单 10-30                   (¥50,000)
    F owner      批发: 意向 09-01, 赢单 10-11                               (¥30,000)
    G owner      意向 11-01, 输单 11-05 (price)
    """
    website, referral = source("website"), source("referral")
    return {
        "A": story(
            crm.owner,
            "A",
            [
                ("意向", at(10, 2)),
                ("产品介绍", at(10, 5)),
                ("产生兴趣", at(10, 12)),
                ("赢单", at(10, 20)),
            ],
            amount="100000",
            customer_source=website,
        ),
        "B": story(
            crm.owner,
            "B",
            [("意向", at(9, 25)), ("产品介绍", at(10, 3)), ("输单", at(10, 10), "price")],
            customer_source=website,
        ),
        "C": story(
            crm.owner,
            "C",
            [("意向", at(10, 4)), ("产品介绍", at(10, 6)), ("产生兴趣", at(11, 2))],
        ),
        "D": story(crm.sub_member, "D", [("意向", at(10, 1)), ("输单", at(10, 15), "competitor")]),
        "E": story(
            crm.outsider,
            "E",
            [("意向", at(10, 8)), ("产品介绍", at(10, 9)), ("赢单", at(10, 30))],
            amount="50000",
        ),
        "F": story(
            crm.owner,
            "F",
            [("意向", at(9, 1)), ("赢单", at(10, 11))],
            pipeline="批发",
            amount="30000",
            customer_source=referral,
        ),
        "G": story(crm.owner, "G", [("意向", at(11, 1)), ("输单", at(11, 5), "price")]),
    }


def report(client, user, **params):
    client.force_login(user)
    response = client.get(URL, {**OCTOBER, **params})
    assert response.status_code == 200
    return response.context["result"]


def rows(table) -> list[list[str]]:
    return [[str(cell) for cell in row] for row in table.rows]


def listed(client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["paginator"].count == len(response.context["object_list"])
    return sorted(deal.title for deal in response.context["object_list"])


# --- figures -----------------------------------------------------------------------


def test_percentiles_interpolate_between_ranks():
    assert percentile([], 0.5) is None
    assert percentile([5], 0.9) == 5
    assert percentile([1, 2, 3, 8, 14], 0.5) == 3
    assert percentile([14, 8, 3, 2, 1], 0.9) == pytest.approx(11.6)
    assert percentile([2, 3, 8, 14], 0.5) == 5.5


def test_the_admin_sees_every_deal_of_the_default_pipeline(client, crm, history):
    result = report(client, crm.admin)
    assert rows(result.table) == [
        # stage, entered, to the next, median days, p90 days, lost from it
        # To the next stage, a cohort: of the 4 that entered 意向, A, C and E went on (D was
        # lost); of the 4 in 产品介绍, A, C (in November) and E (straight to 赢单), not B.
        ["Interest", "4", "75.0%", "3.0", "11.6", "1"],
        ["Product presentation", "4", "75.0%", "7.0", "18.2", "1"],
        ["Interested", "1", "100.0%", "8.0", "8.0", "0"],
        ["Quotation", "0", "—", "—", "—", "0"],
        ["Evaluation", "0", "—", "—", "—", "0"],
        ["Contract", "0", "—", "—", "—", "0"],
        ["Won", "2", "—", "—", "—", "—"],
    ]
    assert [str(c) for c in result.table.totals] == ["Total", "", "", "", "", "2"]
    assert [(label, str(cell)) for label, cell in result.headline] == [
        ("Entered “Interest”", "4"),
        ("Entered “Won”", "2"),
        ("Lost in the period", "2"),
    ]
    [(title, drop_off)] = result.extra_tables
    assert title == "Lost, by stage and reason"
    assert rows(drop_off) == [
        ["Interest", "Chose a competitor", "1"],
        ["Product presentation", "Price too high", "1"],
    ]
    chart = result.chart
    assert chart["type"] == "bar" and chart["options"]["indexAxis"] == "y"
    assert chart["data"]["labels"][0] == "Interest"
    assert chart["data"]["datasets"][0]["data"] == [4, 4, 1, 0, 0, 0, 2]


def test_the_manager_sees_the_department_and_below(client, crm, history):
    result = report(client, crm.manager)
    assert rows(result.table)[:3] == [
        ["Interest", "3", "66.7%", "5.5", "12.2", "1"],
        ["Product presentation", "3", "66.7%", "7.0", "7.0", "1"],
        ["Interested", "1", "100.0%", "8.0", "8.0", "0"],
    ]
    assert rows(result.table)[6] == ["Won", "1", "—", "—", "—", "—"]
    assert [str(cell) for _label, cell in result.headline] == ["3", "1", "2"]


def test_the_rep_sees_only_own_deals(client, crm, history):
    result = report(client, crm.owner)
    assert rows(result.table)[:3] == [
        ["Interest", "2", "100.0%", "3.0", "7.0", "0"],
        ["Product presentation", "3", "66.7%", "7.0", "7.0", "1"],
        ["Interested", "1", "100.0%", "8.0", "8.0", "0"],
    ]
    assert [str(cell) for _label, cell in result.headline] == ["2", "1", "1"]
    assert rows(result.extra_tables[0][1]) == [["Product presentation", "Price too high", "1"]]


def test_the_owner_filter_and_another_pipeline(client, crm, history):
    result = report(client, crm.manager, owner=crm.sub_member.pk)
    assert rows(result.table)[0] == ["Interest", "1", "0.0%", "14.0", "14.0", "1"]
    wholesale = stage("意向", "批发").pipeline
    result = report(client, crm.admin, pipeline=wholesale.pk)
    assert [r[1] for r in rows(result.table)] == ["0", "0", "0", "0", "0", "0", "1"]
    # F left 意向 in October after 40 days there.
    assert rows(result.table)[0][3:5] == ["40.0", "40.0"]


def test_a_deal_moved_to_another_pipeline_counts_its_time_in_the_stage_it_left(client, crm):
    deal = story(crm.owner, "H", [("意向", at(12, 1))])
    wholesale_stage = stage("产品介绍", "批发")
    services.change_pipeline(deal=deal, stage=wholesale_stage, by=crm.owner)
    StageHistory.objects.filter(record_id=deal.pk, to_stage=wholesale_stage).update(
        moved_at=at(12, 5), seconds_in_previous=4 * 86_400
    )
    december = {"period": "custom", "first": "2025-12-01", "last": "2025-12-31"}
    retail = rows(report(client, crm.admin, **december).table)
    assert retail[0] == ["Interest", "1", "0.0%", "4.0", "4.0", "0"]
    wholesale = rows(
        report(client, crm.admin, pipeline=wholesale_stage.pipeline_id, **december).table
    )
    assert [r[1] for r in wholesale[:2]] == ["0", "1"]
    assert wholesale[0][3] == "—"


def test_a_deal_lost_without_a_reason_has_its_drop_off_row_and_list(client, crm, history):
    deal = story(crm.owner, "H", [("意向", at(10, 7)), ("产品介绍", at(10, 9))])
    Deal.objects.filter(pk=deal.pk).update(status="lost", closed_at=at(10, 11))
    lost = Stage.objects.get(pipeline=deal.pipeline, kind=StageKind.LOST)
    # Imported or older data: the services would have asked for a reason.
    StageHistory.objects.create(
        record_type="deal",
        record_id=deal.pk,
        pipeline=deal.pipeline,
        from_stage=deal.stage,
        to_stage=lost,
        moved_at=at(10, 11),
        seconds_in_previous=2 * 86_400,
    )
    Deal.objects.filter(pk=deal.pk).update(stage=lost)
    result = report(client, crm.admin)
    [(_title, drop_off)] = result.extra_tables
    row = next(r for r in drop_off.rows if str(r[1]) == "No reason given")
    assert [str(row[0]), row[2].value] == ["Product presentation", 1]
    assert "missing=lost_reason" in row[2].url
    assert listed(client, row[2].url) == ["H"]


def test_a_hidden_lost_reason_leaves_out_the_drop_off_table(client, crm, history):
    role = crm.owner.role
    role.field_permissions = {"deal": {"lost_reason": "hidden"}}
    role.save()
    assert report(client, crm.owner).extra_tables == []


# --- drill-down ------------------------------------------------------------------------


def drill_cells(result):
    cells = [cell for row in result.table.rows for cell in row if cell.url]
    cells += [cell for _label, cell in result.headline if cell.url]
    cells += [
        cell for _title, t in result.extra_tables for row in t.rows for cell in row if cell.url
    ]
    return cells


@pytest.mark.parametrize("who", ["owner", "manager", "admin"])
def test_every_count_drills_down_to_exactly_that_many_deals(client, crm, history, who):
    user = getattr(crm, who)
    result = report(client, user)
    cells = drill_cells(result)
    assert len(cells) >= 10
    for cell in cells:
        assert len(listed(client, cell.url)) == cell.value, cell.url


def test_the_drill_down_lists_the_deals_behind_the_figure(client, crm, history):
    result = report(client, crm.manager)
    interest, presentation = result.table.rows[0], result.table.rows[1]
    assert listed(client, interest[1].url) == ["A", "C", "D"]
    assert listed(client, presentation[1].url) == ["A", "B", "C"]
    assert listed(client, interest[5].url) == ["D"]
    assert listed(client, presentation[5].url) == ["B"]
    assert "entered_after=2025-10-01" in interest[1].url
    assert f"lost_from={stage('产品介绍').pk}" in presentation[5].url
    # With the owner filter, the list is narrowed the same way.
    result = report(client, crm.manager, owner=crm.owner.pk)
    assert listed(client, result.table.rows[0][1].url) == ["A", "C"]
    # The viewer as the owner: the list knows them as "me".
    result = report(client, crm.manager, owner=crm.manager.pk)
    assert "owner=me" in result.table.rows[0][1].url


# --- the deal list's new filters -----------------------------------------------------


def test_deal_list_filters_entered_stage_and_dates(client, crm, history):
    client.force_login(crm.admin)
    interest = stage("意向").pk
    assert listed(client, f"{DEALS}?entered_stage={interest}") == ["A", "B", "C", "D", "E", "G"]
    assert listed(
        client,
        f"{DEALS}?entered_stage={interest}&entered_after=2025-10-02&entered_before=2025-10-04",
    ) == ["A", "C"]
    # Dates alone: deals that entered any stage then (C moved on 11-02, G was made 11-01).
    assert listed(client, f"{DEALS}?entered_after=2025-11-01") == ["C", "G"]
    assert listed(client, f"{DEALS}?entered_before=2025-09-30") == ["B", "F"]


def test_deal_list_filters_lost_from_closed_reason_and_source(client, crm, history):
    client.force_login(crm.admin)
    interest, presentation = stage("意向").pk, stage("产品介绍").pk
    assert listed(client, f"{DEALS}?lost_from={interest}") == ["D", "G"]
    assert listed(client, f"{DEALS}?lost_from={presentation}") == ["B"]
    october = "closed_after=2025-10-01&closed_before=2025-10-31"
    assert listed(client, f"{DEALS}?lost_from={interest}&{october}") == ["D"]
    assert listed(client, f"{DEALS}?{october}") == ["A", "B", "D", "E", "F"]
    assert listed(client, f"{DEALS}?closed_after=2025-11-01") == ["G"]
    assert listed(client, f"{DEALS}?lost_reason={reason('price').pk}") == ["B", "G"]
    assert listed(client, f"{DEALS}?source={source('website').pk}") == ["A", "B"]
    assert listed(client, f"{DEALS}?source={source('referral').pk}&status=won") == ["F"]


def test_a_lost_deal_reopened_is_not_lost_from_its_stage(client, crm, history):
    deal = history["G"]
    services.move_to_stage(record=deal, stage=stage("意向"), by=crm.owner)
    client.force_login(crm.admin)
    assert listed(client, f"{DEALS}?lost_from={stage('意向').pk}") == ["D"]


def test_the_source_filter_goes_with_a_hidden_customer_source(client, crm, history):
    role = crm.owner.role
    role.field_permissions = {"customer": {"source": "hidden"}}
    role.save()
    client.force_login(crm.owner)
    # Ignored (not offered): the list is not narrowed by what the user may not see.
    assert listed(client, f"{DEALS}?source={source('website').pk}") == ["A", "B", "C", "F", "G"]


def test_the_query_count_does_not_grow_with_the_deals(client, crm, history):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(crm.manager)
    client.get(URL, OCTOBER)  # the session and caches warm
    with CaptureQueriesContext(connection) as before:
        client.get(URL, OCTOBER)
    for n in range(5):
        story(crm.owner, f"more{n}", [("意向", at(10, 3)), ("输单", at(10, 9 + n), "no_budget")])
    with CaptureQueriesContext(connection) as after:
        result = client.get(URL, OCTOBER).context["result"]
    assert str(result.table.rows[0][5]) == "6"
    assert len(after) == len(before)
    report_queries = [q["sql"] for q in after if "pipelines_stagehistory" in q["sql"]]
    assert len(report_queries) == 3  # entered, days in stage, lost by stage and reason
