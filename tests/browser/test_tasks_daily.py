"""A rep's follow-ups in the browser, on a phone and at a desk: she ticks off a follow-up
task, says how it went in the dialog that opens, and finds the follow-up on the
customer's timeline and the next one among her tasks; her week and month in the task
calendar (a list of days on a phone), which a rep of the other sales team finds empty."""

import re
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.demo import seed_organisation
from accounts.models import User
from crm.models import Activity, Customer, DictionaryItem, Task, TaskStatus
from crm.services.activities import log_activity

from .conftest import answered, loads, screenshot, sign_in

pytestmark = pytest.mark.browser

NAME = "宁波甬江精工机械有限公司"
NOTES = "上门拜访了采购部，客户认可方案，下周三前要正式报价。"
# A week nothing else falls in: Monday 4 to Sunday 10 March 2030.
MONDAY = date(2030, 3, 4)
AXE = Path(__file__).resolve().parents[2] / "static" / "vendor" / "axe-core" / "axe.min.js"


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in found["violations"]
        if v["impact"] in {"serious", "critical"}
    ]


def seed() -> User:
    seed_organisation(reset_passwords=True)
    return User.objects.get(username="wangfang")


def kind(code: str) -> DictionaryItem:
    return DictionaryItem.objects.get(dictionary__code="activity_kind", code=code)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def test_a_rep_completes_a_follow_up_and_says_how_it_went(page):
    wangfang = seed()
    customer = Customer.objects.create(name=NAME, owner=wangfang, created_by=wangfang)
    first = log_activity(
        customer=customer,
        by=wangfang,
        kind=kind("call"),
        content="电话初步沟通，约了上门拜访。",
        occurred_at=timezone.now() - timedelta(days=2),
        next_follow_up_at=timezone.now() + timedelta(hours=2),
    )
    task = first.follow_up_tasks.get()
    next_at = (timezone.localtime() + timedelta(days=7)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )

    # 王芳 ticks the follow-up off in her task list...
    sign_in(page, "wangfang")
    with loads(page):
        page.goto("/tasks/?assignee=me&status=open")
    row = page.get_by_test_id("task-row").filter(has_text=NAME)
    expect(row).to_have_count(1)
    with answered(page, f"/tasks/{task.pk}/complete/"):
        row.get_by_test_id("complete").click()
    expect(row.get_by_test_id("reopen")).to_be_visible()

    # ...and a dialog asks how it went: she visited, and plans the next follow-up.
    dialog = page.get_by_test_id("task-outcome")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(NAME)
    dialog.locator("label.form-selectgroup-item", has_text="拜访").click()
    dialog.locator("textarea").fill(NOTES)
    dialog.locator("input[type=datetime-local]").fill(next_at.strftime("%Y-%m-%dT%H:%M"))
    screenshot(page, "task-outcome-1-dialog")
    assert not serious_violations(page)
    with answered(page, f"/tasks/{task.pk}/outcome/"):
        dialog.get_by_test_id("outcome-save").click()
    expect(dialog.get_by_test_id("outcome-saved")).to_be_visible()
    expect(dialog.get_by_test_id("outcome-next")).to_contain_text(NAME)
    screenshot(page, "task-outcome-2-saved")

    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    logged = Activity.objects.get(content=NOTES)
    assert logged.customer == customer and logged.kind.code == "visit"
    planned = Task.objects.get(activity=logged)
    assert planned.status == TaskStatus.OPEN and planned.assignee == wangfang
    assert timezone.localtime(planned.due_at) == next_at

    # The customer's timeline has the visit; the next follow-up is among her open tasks.
    with loads(page, re.compile(rf"/customers/{customer.pk}/$")):
        dialog.get_by_test_id("outcome-customer").click()
    expect(page.get_by_test_id("timeline")).to_contain_text(NOTES)
    screenshot(page, "task-outcome-3-timeline")
    with loads(page):
        page.goto("/tasks/?assignee=me&status=open")
    expect(page.get_by_test_id("task-row").filter(has_text=NAME)).to_have_count(1)
    expect(page.locator(f"#task-row-{planned.pk}")).to_be_visible()


def test_on_the_dashboard_she_ticks_an_overdue_follow_up_and_skips_the_question(page):
    wangfang = seed()
    customer = Customer.objects.create(name=NAME, owner=wangfang, created_by=wangfang)
    first = log_activity(
        customer=customer,
        by=wangfang,
        kind=kind("call"),
        content="电话初步沟通。",
        occurred_at=timezone.now() - timedelta(days=3),
        next_follow_up_at=timezone.now() - timedelta(hours=2),
    )
    task = first.follow_up_tasks.get()

    sign_in(page, "wangfang")
    item = page.get_by_test_id("overdue").get_by_test_id("task-item").filter(has_text=NAME)
    expect(item).to_have_count(1)
    expect(page.get_by_test_id("count-overdue")).to_have_text("1")
    with answered(page, f"/tasks/{task.pk}/complete/"):
        item.get_by_test_id("complete").click()
    expect(item.get_by_test_id("reopen")).to_be_visible()
    expect(page.get_by_test_id("count-overdue")).to_have_text("0")

    # The question comes; she skips it: the task is done, nothing else is logged.
    dialog = page.get_by_test_id("task-outcome")
    expect(dialog.get_by_test_id("outcome-form")).to_be_visible()
    screenshot(page, "task-outcome-4-dashboard")
    dialog.get_by_test_id("outcome-skip").click()
    expect(dialog).to_have_count(0)
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE
    assert list(Activity.objects.filter(customer=customer)) == [first]
    assert not Task.objects.filter(customer=customer, status=TaskStatus.OPEN).exists()


def test_the_calendar_shows_a_week_a_month_and_a_day_list_on_a_phone(page):
    wangfang = seed()
    customer = Customer.objects.create(name=NAME, owner=wangfang, created_by=wangfang)
    Customer.objects.create(
        name="苏州蓝海贸易有限公司",
        owner=wangfang,
        created_by=wangfang,
        next_follow_up_at=at(MONDAY + timedelta(days=3), 9, 30),
    )
    for day, hour, title in (
        (0, 9, "周会：本周重点客户"),
        (1, 10, "给宁波甬江回电确认需求"),
        (1, 14, "准备报价单"),
        (2, 16, "寄送样品"),
        (4, 11, "合同条款评审"),
    ):
        Task.objects.create(
            title=title,
            assignee=wangfang,
            customer=customer,
            due_at=at(MONDAY + timedelta(days=day), hour),
            created_by=wangfang,
        )
    Task.objects.filter(title="寄送样品").update(
        status=TaskStatus.DONE, completed_at=timezone.now()
    )

    # From her task list, 王芳 opens the calendar: her own tasks, this week.
    sign_in(page, "wangfang")
    with loads(page):
        page.goto("/tasks/")
    with loads(page, re.compile(r"/tasks/calendar/\?.*assignee=me")):
        page.get_by_test_id("open-calendar").click()
    expect(page.get_by_test_id("view-week")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.get_by_test_id("calendar-day")).to_have_count(7)

    # The week of 4 March 2030.
    with loads(page):
        page.goto(f"/tasks/calendar/?assignee=me&view=week&date={MONDAY}")
    days = page.get_by_test_id("calendar-day")
    tuesday = page.locator(f"[data-date='{MONDAY + timedelta(days=1)}']")
    expect(tuesday.get_by_test_id("calendar-task")).to_have_count(2)
    expect(tuesday).to_contain_text("10:00")
    thursday = page.locator(f"[data-date='{MONDAY + timedelta(days=3)}']")
    expect(thursday.get_by_test_id("calendar-follow-up")).to_contain_text("苏州蓝海贸易有限公司")
    monday_box, tuesday_box = days.nth(0).bounding_box(), days.nth(1).bounding_box()
    if page.viewport_name == "phone":
        # A list of days: each below the one before, the page's full width.
        assert tuesday_box["y"] >= monday_box["y"] + monday_box["height"] - 1
        assert monday_box["width"] > 300
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    else:
        # Seven columns side by side.
        assert abs(tuesday_box["y"] - monday_box["y"]) < 1
        assert tuesday_box["x"] > monday_box["x"]
    screenshot(page, "task-calendar-1-week")
    assert not serious_violations(page)

    # The month: whole weeks, Monday to Sunday; on a phone only the days with something.
    with loads(page):
        page.get_by_test_id("view-month").click()
    expect(page.get_by_test_id("calendar-period")).to_contain_text("2030")
    expect(page.get_by_test_id("calendar-task")).to_have_count(5)
    if page.viewport_name == "phone":
        expect(page.locator(".app-cal-day:visible")).to_have_count(5)
    else:
        expect(page.locator(".app-cal-day:visible")).to_have_count(35)
    screenshot(page, "task-calendar-2-month")
    assert not serious_violations(page)

    # A task opens from the calendar.
    with loads(page, re.compile(r"/tasks/\d+/$")):
        page.get_by_test_id("calendar-task").filter(has_text="准备报价单").click()
    expect(page.get_by_role("heading", name="准备报价单")).to_be_visible()

    # 刘洋 of 销售二部 sees none of it, whatever he asks for.
    sign_in(page, "liuyang")
    for assignee in ("me", "team", "", str(wangfang.pk)):
        with loads(page):
            page.goto(f"/tasks/calendar/?assignee={assignee}&view=month&date={MONDAY}")
        expect(page.get_by_test_id("calendar")).to_be_visible()
        expect(page.get_by_test_id("calendar-task")).to_have_count(0)
        expect(page.get_by_test_id("calendar-follow-up")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("准备报价单")
    screenshot(page, "task-calendar-3-outsider")
