"""The task calendar (日程, /tasks/calendar/): a week or a month of the person's tasks and
customers' planned next follow-ups, with the task list's scope and filters. A bad
?date= shows today with a message, never an error page."""

import re
from datetime import date, datetime, time

import pytest
from django.urls import reverse
from django.utils import timezone

from crm import selectors
from crm.models import Task, TaskStatus
from crm.services.activities import log_activity

from .factories import CustomerFactory, TaskFactory, give_crm_roles, item

CALENDAR = reverse("tasks:calendar")
# A week far enough ahead that nothing else falls in it: Monday 4 to Sunday 10 March 2030.
MONDAY = date(2030, 3, 4)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def week(day: date = MONDAY, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"view": "week", "date": day, **params}.items())
    return f"{CALENDAR}?{query}"


def entries_of(html: str, day: date) -> str:
    """The HTML of one day of the calendar."""
    match = re.search(
        rf'<section[^>]*data-date="{day.isoformat()}".*?</section>', html, flags=re.DOTALL
    )
    assert match, f"{day} is not on the page"
    return match.group(0)


@pytest.fixture
def crm(org):
    return give_crm_roles(org)


@pytest.fixture
def plan(crm):
    """王芳's week: a call on Tuesday 10:00, a done task on Wednesday, a follow-up planned
    by a logged call on Thursday 15:00 (a task), and a customer whose next follow-up on
    Friday 09:30 has no task (an import set it)."""
    customer = CustomerFactory(name="华东精密机械有限公司", owner=crm.owner)
    activity = log_activity(
        customer=CustomerFactory(name="杭州云帆科技", owner=crm.owner),
        by=crm.owner,
        kind=item("activity_kind", "call"),
        content="约好周四再谈",
        next_follow_up_at=at(MONDAY.replace(day=7), 15),
    )
    imported = CustomerFactory(
        name="苏州蓝海贸易", owner=crm.owner, next_follow_up_at=at(MONDAY.replace(day=8), 9, 30)
    )
    return {
        "call": TaskFactory(
            assignee=crm.owner,
            title="给华东回电",
            customer=customer,
            due_at=at(MONDAY.replace(day=5), 10),
        ),
        "done": TaskFactory(
            assignee=crm.owner,
            title="寄送样品",
            due_at=at(MONDAY.replace(day=6), 11),
            status=TaskStatus.DONE,
            completed_at=timezone.now(),
        ),
        "planned": activity.follow_up_tasks.get(),
        "imported": imported,
    }


def test_without_filters_the_calendar_is_my_own(client, crm):
    client.force_login(crm.owner)
    response = client.get(f"{CALENDAR}?view=month&date=2030-03-04")
    assert response.status_code == 302
    assert "assignee=me" in response["Location"]
    assert "view=month" in response["Location"] and "date=2030-03-04" in response["Location"]


def test_the_week_shows_tasks_and_planned_follow_ups_on_their_days(client, crm, plan):
    client.force_login(crm.owner)
    response = client.get(week(assignee="me"))
    assert response.status_code == 200
    html = response.content.decode()

    assert html.count('data-testid="calendar-day"') == 7
    assert "给华东回电" in entries_of(html, date(2030, 3, 5))
    assert "10:00" in entries_of(html, date(2030, 3, 5))
    assert "寄送样品" in entries_of(html, date(2030, 3, 6))
    assert "app-cal-done" in entries_of(html, date(2030, 3, 6))
    thursday = entries_of(html, date(2030, 3, 7))
    # The follow-up a call planned is its task, once: not the customer's plan again.
    assert thursday.count('data-testid="calendar-task"') == 1
    assert 'data-testid="calendar-follow-up"' not in thursday
    friday = entries_of(html, date(2030, 3, 8))
    assert 'data-testid="calendar-follow-up"' in friday and "苏州蓝海贸易" in friday
    assert reverse("customers:detail", args=[plan["imported"].pk]) in friday
    assert 'data-testid="calendar-task"' not in entries_of(html, MONDAY)


def test_the_month_is_whole_weeks_around_it(client, crm, plan):
    client.force_login(crm.owner)
    html = client.get(f"{CALENDAR}?view=month&date=2030-03-20&assignee=me").content.decode()
    days = re.findall(r'data-date="([\d-]+)"', html)
    assert days[0] == "2030-02-25" and days[-1] == "2030-03-31"  # Monday to Sunday
    assert len(days) % 7 == 0
    assert "app-cal-outside" in entries_of(html, date(2030, 2, 25))
    assert "给华东回电" in entries_of(html, date(2030, 3, 5))


def test_the_list_filters_hold_in_the_calendar(client, crm, plan):
    client.force_login(crm.owner)
    done = client.get(week(assignee="me", status="done")).content.decode()
    assert "寄送样品" in done
    assert "给华东回电" not in done
    assert 'data-testid="calendar-follow-up"' not in done  # a plan is never done
    searched = client.get(week(assignee="me", q="华东")).content.decode()
    assert "给华东回电" in searched and "寄送样品" not in searched
    assert "苏州蓝海贸易" not in searched


def test_the_outsider_sees_none_of_the_owners_tasks(client, crm, plan):
    client.force_login(crm.outsider)
    for params in (
        {"assignee": "me"},
        {"assignee": "team"},
        {"assignee": ""},
        {"assignee": str(crm.owner.pk)},
        {"q": "华东"},
    ):
        for view in ("week", "month"):
            response = client.get(week(**{**params, "view": view}))
            assert response.status_code == 200, params
            html = response.content.decode()
            for title in ("给华东回电", "寄送样品", "跟进：", "苏州蓝海贸易", "杭州云帆科技"):
                assert title not in html, (params, view, title)
            assert 'data-testid="calendar-task"' not in html
            assert 'data-testid="calendar-follow-up"' not in html


def test_the_selector_keeps_to_the_scope_whatever_it_is_given(crm, plan):
    days = selectors.calendar_days(
        crm.outsider,
        MONDAY,
        MONDAY.replace(day=10),
        tasks=Task.objects.all(),
        customers=plan["imported"].__class__.objects.all(),
    )
    assert not any(days.days.values())
    mine = selectors.calendar_days(crm.owner, MONDAY, MONDAY.replace(day=10))
    assert [e.task.title for e in mine.days[date(2030, 3, 5)]] == ["给华东回电"]


@pytest.mark.parametrize(
    "bad",
    [
        "tomorrow",
        "2030-02-30",
        "0001-01-01",
        "9999-12-31",
        "1899-12-31",
        "2100-01-01",
        "99999-01-01",
        "2030-03-04T10:00",
        "%E2%80%AE2030",
        "1" * 300,
    ],
)
def test_a_bad_date_shows_today_with_a_message(client, crm, bad):
    client.force_login(crm.owner)
    for view in ("week", "month"):
        response = client.get(f"{CALENDAR}?view={view}&date={bad}&assignee=me")
        assert response.status_code == 200, bad
        html = response.content.decode()
        assert 'data-testid="calendar-date-error"' in html
        assert f'data-date="{timezone.localdate().isoformat()}"' in html


def test_an_unknown_view_is_the_week(client, crm):
    client.force_login(crm.owner)
    response = client.get(f"{CALENDAR}?view=year&date=2030-03-05&assignee=me")
    assert response.status_code == 200
    assert response.content.decode().count('data-testid="calendar-day"') == 7


@pytest.mark.parametrize(
    ("query", "missing"),
    [
        ("view=month&date=2099-12-31", "calendar-next"),
        ("view=week&date=1900-01-01", "calendar-previous"),
    ],
)
def test_the_edges_of_the_calendar_have_no_way_past_them(client, crm, query, missing):
    client.force_login(crm.owner)
    response = client.get(f"{CALENDAR}?{query}&assignee=me")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-testid="{missing}"' not in html
    assert 'data-testid="calendar-date-error"' not in html


def test_the_list_links_to_its_calendar_with_its_filters(client, crm):
    client.force_login(crm.owner)
    html = client.get(reverse("tasks:list") + "?assignee=me&status=open").content.decode()
    assert f'href="{CALENDAR}?assignee=me&amp;status=open"' in html
    calendar = client.get(week(assignee="me", status="open")).content.decode()
    assert 'href="/tasks/?assignee=me&amp;status=open"' in calendar


def test_the_filter_panel_keeps_the_period(client, crm):
    client.force_login(crm.owner)
    html = client.get(week(assignee="me", filters_form=1)).content.decode()
    assert 'data-testid="filter-form"' in html
    assert 'name="view" value="week"' in html and 'name="date" value="2030-03-04"' in html


def test_a_busy_day_of_the_month_lists_its_first_entries_and_links_to_its_week(client, crm):
    tuesday = MONDAY.replace(day=5)
    for hour in range(8, 15):
        TaskFactory(assignee=crm.owner, title=f"拜访第{hour}家", due_at=at(tuesday, hour))
    client.force_login(crm.owner)
    html = client.get(f"{CALENDAR}?view=month&date=2030-03-01&assignee=me").content.decode()
    day = entries_of(html, tuesday)
    # All seven are there for a phone's list of days; a desk's cell shows four.
    assert day.count('data-testid="calendar-task"') == 7
    assert day.count('class="app-cal-extra"') == 3
    more = re.search(r'<a href="([^"]+)" class="app-cal-more[^>]*>([^<]+)<', day)
    assert more and "3" in more.group(2)
    assert "view=week" in more.group(1) and "date=2030-03-05" in more.group(1)
