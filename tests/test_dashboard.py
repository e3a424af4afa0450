"""The dashboard (/): the signed-in user's tasks due today, overdue tasks and customers to
follow up, with counts, in-place completion, and for managers the team's overdue tasks.

"Today" lists open tasks due from now to midnight; "Overdue" those due before now (so a
task due at 9:00 shows as overdue at 14:00, not twice)."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from accounts.models import DataScope
from crm.filters import end_of_today, start_of_today
from crm.models import TaskStatus

from .factories import CustomerFactory, TaskFactory, crm_permissions, give_crm_roles

HTMX = {"HTTP_HX_REQUEST": "true"}


def moments():
    now = timezone.now()
    start, end = start_of_today(), end_of_today()
    return SimpleNamespace(
        now=now,
        last_week=start - timedelta(days=7),
        yesterday=start - timedelta(hours=3),
        earlier_today=start + (now - start) / 2,
        later_today=now + (end - now) / 2,
        tomorrow=end + timedelta(hours=10),
    )


@pytest.fixture
def crm(org):
    return give_crm_roles(org)


@pytest.fixture
def work(crm):
    """The owner's tasks and customers at known times, and others' that must not show."""
    t = moments()
    owner, colleague = crm.owner, crm.colleague
    mine = CustomerFactory(name="华东精密", owner=owner)
    theirs = CustomerFactory(name="同事的客户", owner=colleague)
    return SimpleNamespace(
        later_today=TaskFactory(
            assignee=owner, title="下午回电", due_at=t.later_today, customer=mine
        ),
        earlier_today=TaskFactory(assignee=owner, title="上午发报价", due_at=t.earlier_today),
        yesterday=TaskFactory(assignee=owner, title="昨天的合同", due_at=t.yesterday),
        last_week=TaskFactory(assignee=owner, title="上周的回访", due_at=t.last_week),
        # Not on the owner's dashboard:
        tomorrow=TaskFactory(assignee=owner, title="明天拜访", due_at=t.tomorrow),
        no_due=TaskFactory(assignee=owner, title="有空再做"),
        done=TaskFactory(
            assignee=owner,
            title="已经做完",
            due_at=t.earlier_today,
            status=TaskStatus.DONE,
            completed_at=t.now,
        ),
        cancelled=TaskFactory(
            assignee=owner, title="取消了", due_at=t.yesterday, status=TaskStatus.CANCELLED
        ),
        colleagues=TaskFactory(assignee=colleague, title="同事的待办", due_at=t.earlier_today),
        # About the owner's customer but assigned to the colleague: theirs to do.
        about_mine=TaskFactory(
            assignee=colleague, title="同事帮忙", due_at=t.later_today, customer=mine
        ),
        follow_up_later=CustomerFactory(
            name="今天晚些跟进", owner=owner, next_follow_up_at=t.later_today
        ),
        follow_up_missed=CustomerFactory(
            name="错过的跟进", owner=owner, next_follow_up_at=t.yesterday
        ),
        follow_up_tomorrow=CustomerFactory(
            name="明天再跟进", owner=owner, next_follow_up_at=t.tomorrow
        ),
        follow_up_colleague=CustomerFactory(
            name="同事要跟进", owner=colleague, next_follow_up_at=t.earlier_today
        ),
        follow_up_pool=CustomerFactory(
            name="公海要跟进", owner=None, next_follow_up_at=t.yesterday
        ),
        theirs=theirs,
    )


def dashboard(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    return response


def test_shows_exactly_my_tasks_due_today_and_overdue_and_my_follow_ups(client, crm, work):
    response = dashboard(client, crm.owner)
    ctx = response.context
    assert [t.title for t in ctx["today_tasks"]] == ["下午回电"]
    # Most recently missed first.
    assert [t.title for t in ctx["overdue_tasks"]] == ["上午发报价", "昨天的合同", "上周的回访"]
    assert [c.name for c in ctx["follow_ups"]] == ["错过的跟进", "今天晚些跟进"]
    assert (ctx["today_count"], ctx["overdue_count"], ctx["follow_up_count"]) == (1, 3, 2)
    # Tomorrow's task is not today's: it is listed as coming up, below.
    assert [t.title for t in ctx["coming_up_tasks"]] == ["明天拜访"]
    html = response.content.decode()
    assert html.index("下午回电") < html.index("明天拜访")
    for hidden in ("有空再做", "已经做完", "取消了", "同事的待办", "同事帮忙"):
        assert hidden not in html, hidden
    for hidden in ("明天再跟进", "同事要跟进", "公海要跟进"):
        assert hidden not in html, hidden
    assert f"/customers/{work.follow_up_later.pk}/" in html
    assert f"/tasks/{work.later_today.pk}/complete/" in html


def test_counts_are_in_the_card_headers_and_overdue_is_red(client, crm, work):
    html = dashboard(client, crm.owner).content.decode()

    def badge(testid):
        part = html[html.index(f'data-testid="{testid}">') :]
        return part[part.index(">") + 1 : part.index("<")]

    assert (badge("count-today"), badge("count-overdue"), badge("count-follow-ups")) == (
        "1",
        "3",
        "2",
    )
    missed = html[html.index("错过的跟进") :]
    assert "text-danger" in missed[: missed.index("</a>")]
    later = html[html.index("今天晚些跟进") :]
    assert "text-danger" not in later[: later.index("</a>")]


def test_the_colleague_sees_the_task_about_the_owners_customer(client, crm, work):
    ctx = dashboard(client, crm.colleague).context
    assert [t.title for t in ctx["today_tasks"]] == ["同事帮忙"]
    assert [t.title for t in ctx["overdue_tasks"]] == ["同事的待办"]
    assert [c.name for c in ctx["follow_ups"]] == ["同事要跟进"]


def test_empty_states(client, crm):
    response = dashboard(client, crm.outsider)
    ctx = response.context
    assert (ctx["today_count"], ctx["overdue_count"], ctx["follow_up_count"]) == (0, 0, 0)
    html = response.content.decode()
    assert html.count('class="empty ') >= 3
    assert 'data-testid="task-item"' not in html


def test_each_card_is_capped_and_links_to_the_full_list(client, crm):
    t = moments()
    for i in range(25):
        TaskFactory(assignee=crm.owner, title=f"逾期{i}", due_at=t.yesterday - timedelta(hours=i))
    ctx = dashboard(client, crm.owner).context
    assert len(ctx["overdue_tasks"]) == 20
    assert ctx["overdue_count"] == 25
    assert "/tasks/?assignee=me&amp;due=overdue" in client.get("/").content.decode()


def test_queries_are_bounded(client, crm, django_assert_max_num_queries):
    t = moments()
    for i in range(15):
        customer = CustomerFactory(owner=crm.owner, next_follow_up_at=t.yesterday)
        TaskFactory(assignee=crm.owner, due_at=t.later_today, customer=customer)
        TaskFactory(assignee=crm.owner, due_at=t.yesterday - timedelta(hours=i), customer=customer)
    client.force_login(crm.owner)
    with django_assert_max_num_queries(10):
        client.get("/")
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT_TREE, crm_permissions())
    client.force_login(manager)
    with django_assert_max_num_queries(12):
        assert client.get("/").context["is_manager"]


def test_completing_from_the_dashboard_works_in_place(client, crm, work):
    client.force_login(crm.owner)
    response = client.post(
        f"/tasks/{work.later_today.pk}/complete/", {"variant": "item", "next": "/"}, **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "app-task-done" in html
    work.later_today.refresh_from_db()
    assert work.later_today.status == TaskStatus.DONE
    ctx = client.get("/").context
    assert ctx["today_count"] == 0 and ctx["today_tasks"] == []


def test_without_javascript_completing_returns_to_the_dashboard(client, crm, work):
    client.force_login(crm.owner)
    response = client.post(f"/tasks/{work.yesterday.pk}/complete/", {"next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_manager_sees_the_team_overdue_card(client, crm, work):
    t = moments()
    TaskFactory(assignee=crm.sub_member, title="下级逾期1", due_at=t.yesterday)
    TaskFactory(assignee=crm.sub_member, title="下级逾期2", due_at=t.last_week)
    TaskFactory(assignee=crm.outsider, title="别的部门逾期", due_at=t.yesterday)
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT_TREE, crm_permissions())
    response = dashboard(client, manager)
    team = [(p.name, p.overdue) for p in response.context["team_overdue"]]
    # The owner: earlier today, yesterday, last week; the sub-department member: two;
    # the manager: one. The other department is not in the scope.
    assert team == [("王芳", 3), ("赵强", 2), ("李娜", 1)]
    assert 'data-testid="team-overdue"' in response.content.decode()


def test_reps_do_not_see_the_team_card(client, crm, work):
    response = dashboard(client, crm.owner)
    assert not response.context["is_manager"]
    assert 'data-testid="team-overdue"' not in response.content.decode()


def test_a_user_without_task_permission_sees_no_task_cards(client, org):
    no_tasks = org.set_scope(org.owner, DataScope.OWN, crm_permissions(types=("customer",)))
    html = dashboard(client, no_tasks).content.decode()
    assert 'data-testid="today"' not in html
    assert 'data-testid="follow-ups"' in html
    assert 'data-testid="my-role"' in html  # the account card stays
