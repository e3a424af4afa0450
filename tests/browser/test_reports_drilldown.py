"""A report opened from /reports/ in the browser (issue 16): the period select shows the
period of the figures and "Apply" unchanged keeps it; a figure opens the deal list, which
says in words what it shows and links back to the report with its period."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import expect

from .conftest import loads, screenshot, sign_in
from .test_reports import apply_period, stage_counts

pytestmark = pytest.mark.browser


def test_a_report_from_the_index_shows_its_period_and_a_drill_down_leads_back(page):
    call_command("seed_demo", force=True, stdout=StringIO())
    sign_in(page, "zhangwei")
    page.goto("/reports/")
    with loads(page, re.compile(r"/reports/funnel/$")):
        page.get_by_test_id("report-index").get_by_role("link", name=re.compile("销售漏斗")).click()

    form = page.get_by_test_id("report-filters")
    period = form.locator("#id_period")
    # The figures are for this month, and so is the select (not the first option, 本周).
    expect(page.get_by_test_id("period-name")).to_have_text("本月")
    expect(period).to_have_value("month")
    expect(period.locator("option:checked")).to_have_text("本月")
    caption = page.get_by_test_id("period").inner_text()

    # Apply without touching anything: still this month, same figures.
    with loads(page, re.compile(r"period=month")):
        form.get_by_test_id("apply").click()
    expect(page.get_by_test_id("period-name")).to_have_text("本月")
    expect(page.locator("#id_period")).to_have_value("month")
    assert page.get_by_test_id("period").inner_text() == caption

    counts = [c for c in stage_counts(page) if c[1]]
    if not counts:  # the first days of a month: the demo history lies before it
        today = timezone.localdate()
        first = (today - timedelta(days=180)).isoformat()
        apply_period(page, "custom", first=first, last=today.isoformat())
        counts = [c for c in stage_counts(page) if c[1]]
    assert counts, "the demo deals entered no stage in the period"
    period_key = page.locator("#id_period").input_value()
    screenshot(page, "reports-funnel-period")

    stage_name, entered = counts[-1]
    row = page.get_by_test_id("report-table").locator("tbody tr", has_text=stage_name).first
    with loads(page, re.compile(r"/deals/\?.*entered_stage=\d+.*from=")):
        row.locator("td").nth(1).get_by_test_id("drill").click()

    summary = page.get_by_test_id("filter-summary")
    expect(summary).to_be_visible()
    # In words: the stage by its name and the period's dates, no ids.
    expect(summary).to_contain_text("进入阶段")
    expect(summary).to_contain_text(stage_name)
    expect(summary).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2} – "))
    total = page.get_by_test_id("list-count")
    assert int(re.findall(r"\d+", total.inner_text())[-1]) == entered
    screenshot(page, "reports-deals-drill-down")

    with loads(page, re.compile(rf"/reports/funnel/\?period={period_key}")):
        summary.get_by_test_id("back-to-report").click()
    expect(page.locator("#id_period")).to_have_value(period_key)
    expect(page.get_by_test_id("report-table")).to_be_visible()
