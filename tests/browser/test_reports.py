"""The funnel report in the browser, on a phone and at a desk: the sales manager opens
it, changes the period, clicks a stage's count and lands on the list of exactly those
deals."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from .conftest import loads, screenshot, sign_in

pytestmark = pytest.mark.browser


def stage_counts(page) -> list[tuple[str, int]]:
    """(stage, entered) of the funnel table's rows, with a link to the deals."""
    rows = page.get_by_test_id("report-table").locator("tbody tr")
    found = []
    for index in range(rows.count()):
        link = rows.nth(index).locator("td").nth(1).get_by_test_id("drill")
        if link.count():
            found.append((rows.nth(index).locator("td").first.inner_text(), int(link.inner_text())))
    return found


def apply_period(page, period: str, **dates) -> None:
    form = page.get_by_test_id("report-filters")
    form.locator("#id_period").select_option(period)
    for name, value in dates.items():
        form.locator(f"#id_{name}").fill(value)
    # The table is read right after: the new page has to be there in full.
    with loads(page, re.compile(rf"period={period}")):
        form.get_by_test_id("apply").click()


def test_the_manager_opens_the_funnel_changes_the_period_and_drills_into_a_stage(page):
    call_command("seed_demo", force=True, stdout=StringIO())
    sign_in(page, "zhangwei")
    page.goto("/reports/funnel/")
    expect(page.get_by_test_id("report-table")).to_be_visible()
    expect(page.get_by_test_id("period")).to_be_visible()

    apply_period(page, "quarter")
    counts = [c for c in stage_counts(page) if c[1]]
    if not counts:  # the first days of a quarter: the demo history lies before it
        today = timezone.localdate()
        first = (today - timedelta(days=180)).isoformat()
        apply_period(page, "custom", first=first, last=today.isoformat())
        counts = [c for c in stage_counts(page) if c[1]]
    assert counts, "the demo deals entered no stage in the period"
    # The chart is drawn (Chart.js marks the canvas) above the table.
    expect(page.locator("canvas[data-chart][data-drawn]")).to_have_count(1)
    screenshot(page, "reports-funnel")

    stage_name, entered = counts[0]
    row = page.get_by_test_id("report-table").locator("tbody tr", has_text=stage_name).first
    with loads(page, re.compile(r"/deals/\?.*entered_stage=\d+")):
        row.locator("td").nth(1).get_by_test_id("drill").click()

    total = page.get_by_test_id("list-count")
    expect(total).to_be_visible()
    # "1–25 of 37" / "1–25 共 37": the last number is the list's total.
    assert int(re.findall(r"\d+", total.inner_text())[-1]) == entered
    screenshot(page, "reports-funnel-drill-down")


def test_the_manager_reads_the_win_rate_on_a_phone_and_at_a_desk(page):
    call_command("seed_demo", force=True, stdout=StringIO())
    sign_in(page, "zhangwei")
    today = timezone.localdate()
    last_year = (today - timedelta(days=365)).isoformat()
    page.goto(f"/reports/win-rate/?period=custom&first={last_year}&last={today.isoformat()}")
    expect(page.get_by_test_id("report-table")).to_be_visible()
    expect(page.locator("canvas[data-chart][data-drawn]")).to_have_count(1)
    won = page.get_by_test_id("report-table").get_by_test_id("drill-total").first
    expected = int(won.inner_text())
    assert expected > 0
    screenshot(page, "reports-win-rate")
    with loads(page, re.compile(r"/deals/\?.*status=won")):
        won.click()
    total = page.get_by_test_id("list-count")
    expect(total).to_be_visible()
    assert int(re.findall(r"\d+", total.inner_text())[-1]) == expected
