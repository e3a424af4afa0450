"""What people found reading the reports (issue 16): the period select shows the period
the figures are for; the funnel's "to the next stage" is a cohort's share (never over
100%); placeholders sit where their column's numbers sit; a drill-down says what it shows
in words and links back to its report (never elsewhere); item codes and technical names
stay out of the text (the leads footnote, the configuration log)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from crm.config.log import acting_as, object_text, source_label
from crm.models import ConfigChange, Dictionary, DictionaryItem
from pipelines.selectors import VAGUE_LOST_REASONS
from pipelines.views.deals import report_origin
from reports.base import Cell, Column, Table

from . import test_report_funnel as funnel
from .factories import CustomerFactory, UserFactory
from .factories.crm import custom_field
from .test_report_funnel import DEALS, OCTOBER, URL, at, report, rows, story

# The funnel report's people (a rep, a manager, an admin) and its October deals.
crm, history = funnel.crm, funnel.history

pytestmark = pytest.mark.usefixtures("english")


def selected_period(html: str) -> list[str]:
    select = re.search(r'<select name="period".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="([a-z_]+)"[^>]*\bselected\b', select)


# --- the period select -----------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        {},  # opened from /reports/
        {"owner": ""},  # filters without a period
        {"period": "decade"},  # a period that does not exist
    ],
)
def test_the_period_select_shows_the_period_of_the_figures(client, crm, query):
    client.force_login(crm.manager)
    response = client.get(URL, query)
    assert response.status_code == 200
    assert response.context["ctx"].period.key == "month"
    assert selected_period(response.content.decode()) == ["month"]
    # The caption names it too.
    assert "This month" in response.content.decode()


def test_a_wrong_filter_does_not_undo_the_period_chosen(client, crm):
    client.force_login(crm.manager)
    response = client.get(URL, {"period": "quarter", "owner": "999999"})
    assert response.status_code == 200
    assert response.context["ctx"].period.key == "quarter"
    assert selected_period(response.content.decode()) == ["quarter"]
    assert "owner" in response.context["form"].errors


def test_incomplete_custom_dates_say_which_period_the_figures_are_for(client, crm):
    client.force_login(crm.manager)
    response = client.get(URL, {"period": "custom", "first": "2025-10-01"})
    html = response.content.decode()
    assert response.context["ctx"].period.key == "month"
    assert 'data-testid="period-fallback"' in html
    assert "the figures below are for: This month" in html
    # A complete period has no such warning.
    html = client.get(URL, OCTOBER).content.decode()
    assert 'data-testid="period-fallback"' not in html
    assert selected_period(html) == ["custom"]


# --- the funnel's conversion -------------------------------------------------------------


def conversion(table) -> dict[str, str]:
    return {row[0]: row[2] for row in rows(table)}


def test_a_deal_entering_a_stage_twice_counts_once_and_never_over_100(client, crm):
    """意向 → 产品介绍 → 意向 → 产品介绍 → 产生兴趣 in October: one deal in each cohort."""
    story(
        crm.owner,
        "bounce",
        [
            ("意向", at(10, 1)),
            ("产品介绍", at(10, 3)),
            ("意向", at(10, 5)),
            ("产品介绍", at(10, 7)),
            ("产生兴趣", at(10, 9)),
        ],
    )
    table = report(client, crm.admin).table
    assert rows(table)[0][:3] == ["Interest", "1", "100.0%"]
    assert rows(table)[1][:3] == ["Product presentation", "1", "100.0%"]
    assert rows(table)[2][:3] == ["Interested", "1", "0.0%"]


def test_only_a_later_move_forward_counts(client, crm):
    """A deal that was in 产生兴趣 in September and went back to 意向 in October did not go
    on from the October 意向; one that went back from 产品介绍 did not go on either."""
    story(
        crm.owner,
        "back",
        [("意向", at(9, 1)), ("产生兴趣", at(9, 10)), ("意向", at(10, 2))],
    )
    story(crm.owner, "retreat", [("意向", at(10, 1)), ("产品介绍", at(10, 3)), ("意向", at(10, 8))])
    shown = conversion(report(client, crm.admin).table)
    # 意向: "back" stayed, "retreat" reached 产品介绍 after entering → 1 of 2.
    assert shown["Interest"] == "50.0%"
    # 产品介绍: "retreat" went back, not on.
    assert shown["Product presentation"] == "0.0%"


def test_moves_dated_alike_count_as_going_on(client, crm):
    """An imported history dates a day's moves alike: entering 意向 and 产品介绍 at the
    same moment is going on from 意向."""
    story(crm.owner, "imported", [("意向", at(10, 2, 0)), ("产品介绍", at(10, 2, 0))])
    assert conversion(report(client, crm.admin).table)["Interest"] == "100.0%"


def test_moving_on_after_the_period_counts_and_moving_to_lost_does_not(client, crm, history):
    # C entered 产品介绍 in October and 产生兴趣 on 11-02: it went on (history fixture).
    table = report(client, crm.owner).table
    presentation = rows(table)[1]
    assert presentation[:3] == ["Product presentation", "3", "66.7%"]  # A and C, not B (lost)


def test_conversion_never_reads_over_100_percent(client, crm, history):
    for who in (crm.owner, crm.manager, crm.admin):
        for row in report(client, who).table.rows:
            if row[2].value is not None:
                assert 0 <= row[2].value <= 100


def test_day_counts_of_a_column_read_alike(client, crm, history):
    table = report(client, crm.admin).table
    days = [row[3].text for row in table.rows if row[3].value is not None]
    assert days and all(re.fullmatch(r"\d+\.\d", text) for text in days), days


# --- placeholders align with their column's numbers ----------------------------------


def test_a_placeholder_in_a_numeric_column_is_aligned_like_its_numbers():
    table = Table(
        [Column("name", "Name"), Column("n", "N", numeric=True), Column("rate", "Rate", True)],
        rows=[[Cell("A"), Cell(1), Cell(None, "—")]],
        totals=[Cell("Total"), Cell(""), Cell(None, "—")],
    )
    assert [end for _cell, end in table.display_rows[0]] == [False, True, True]
    assert [end for _cell, end in table.display_totals] == [False, True, True]


def test_the_funnel_page_right_aligns_the_won_rows_placeholders(client, crm, history):
    client.force_login(crm.admin)
    html = client.get(URL, OCTOBER).content.decode()
    table = re.search(r'data-testid="report-table".*?</table>', html, re.S).group(0)
    won = re.search(r"<tr><td[^>]*>Won</td>(.*?)</tr>", table, re.S).group(1)
    cells = re.findall(r'<td class="([^"]*)">', won)
    assert len(cells) == 5 and all("text-end" in css for css in cells), cells


# --- drill-downs: what the list shows, and the way back ---------------------------------


def test_a_funnel_figure_opens_the_list_saying_what_it_shows_and_where_it_came_from(
    client, crm, history
):
    result = report(client, crm.manager, owner=crm.owner.pk)
    cell = result.table.rows[1][1]  # 产品介绍 → entered
    origin = parse_qs(urlsplit(cell.url).query)["from"][0]
    assert origin.startswith(URL) and "period=custom" in origin
    assert f"owner={crm.owner.pk}" in origin

    response = client.get(cell.url)
    assert response.status_code == 200
    assert response.context["back_url"] == origin
    shown = dict(response.context["filterset"].active_filters())
    assert list(shown) == ["Owner", "Entered the stage", "Entered a stage"]
    # The stage by its name (after its pipeline's when there are several).
    assert shown["Entered the stage"].endswith("Product presentation")
    assert shown["Entered a stage"] == "2025-10-01 – 10-31"
    assert shown["Owner"] == "王芳"
    html = response.content.decode()
    assert 'data-testid="filter-summary"' in html and 'data-testid="back-to-report"' in html
    assert f'href="{origin.replace("&", "&amp;")}"' in html
    # Where it came from is no filter: saved views and exports leave it out.
    assert "from=" not in response.context["query"]


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/reports/funnel/",
        "//evil.example/reports/funnel/",
        "/\\evil.example/reports/funnel/",
        "javascript:alert(1)",
        "/customers/",
        "/reports/../accounts/logout/",
        "reports/funnel/",
        "/reports/funnel/\n",
    ],
)
def test_the_way_back_is_only_ever_a_report_of_this_site(client, crm, target):
    assert report_origin(target) == ""
    client.force_login(crm.manager)
    response = client.get(DEALS, {"from": target, "status": "open"})
    assert response.status_code == 200
    assert response.context["back_url"] == ""
    assert 'data-testid="back-to-report"' not in response.content.decode()


def test_a_report_address_is_a_way_back():
    assert report_origin(f"{URL}?period=month") == f"{URL}?period=month"
    assert report_origin(reverse("reports:index")) == reverse("reports:index")


def test_other_lists_say_their_filters_in_words_too(client, crm):
    source = DictionaryItem.objects.of("customer_source").get(code="website")
    CustomerFactory(owner=crm.owner, source=source)
    client.force_login(crm.owner)
    response = client.get(
        reverse("customers:list"),
        {"source": source.pk, "created_after": "2025-01-01", "stale": "30", "q": "上海"},
    )
    assert response.status_code == 200
    shown = dict(response.context["filterset"].active_filters())
    assert shown["Source"] == str(source)
    assert shown["Created"] == "from 2025-01-01"
    assert shown["Search"] == "“上海”"
    assert 'data-testid="filter-summary"' in response.content.decode()
    # Without filters there is nothing to say; a bad value is left out, not shown.
    response = client.get(reverse("customers:list"))
    assert 'data-testid="filter-summary"' not in response.content.decode()
    response = client.get(reverse("leads:list"), {"status": "nonsense", "owner": "me"})
    assert response.status_code == 200
    assert dict(response.context["filterset"].active_filters()) == {"Owner": "Me"}


# --- no codes in the text ---------------------------------------------------------------


def test_the_leads_footnote_names_vague_reasons_by_their_labels(client, crm):
    reasons = Dictionary.objects.get(code="lost_reason")
    DictionaryItem.objects.create(dictionary=reasons, code="other", label="其他", label_en="Misc.")
    client.force_login(crm.admin)
    response = client.get(reverse("reports:report", args=["leads"]), OCTOBER)
    note = next(n for n in response.context["result"].notes if "vague" in n)
    assert "Misc." in note
    for code in VAGUE_LOST_REASONS - {"other"}:
        assert code not in note
    assert "other," not in note and "not_specified" not in note


def test_the_configuration_log_shows_labels_not_codes(client, crm):
    with acting_as(None, "manage.py seed_demo"):
        custom_field("wechat_group", "text", label="微信群", label_en="WeChat group")
    change = ConfigChange.objects.filter(model="crm.customfield").latest("id")
    assert "customer.wechat_group" in change.object_repr  # stored as it was
    assert source_label(change.source) == "Demo data"
    assert "wechat_group" not in object_text(change)
    assert source_label("manage.py flush") == "Server command"
    assert source_label("admin") == "Admin site"

    admin = UserFactory(username="boss", is_staff=True, is_superuser=True, language="en")
    client.force_login(admin)
    changelist = client.get(reverse("admin:crm_configchange_changelist"))
    html = changelist.content.decode()
    assert changelist.status_code == 200
    assert "Demo data" in html
    assert "customer.wechat_group" not in html and "manage.py seed_demo" not in html
    detail = client.get(reverse("admin:crm_configchange_change", args=[change.pk]))
    assert "customer.wechat_group" not in detail.content.decode()
    assert "Demo data" in detail.content.decode()
    document = client.get(reverse("admin:crm_configchange_document"))
    assert document.status_code == 200
    assert "manage.py seed_demo" not in document.content.decode()
    assert "customer.wechat_group" not in document.content.decode()
