"""The dashboard (/): the signed-in user's tasks due today and overdue tasks, with counts
and in-place completion, and for managers the team (who is behind). See
test_dashboard_roles.py for what each demo role's home shows.

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


def test_shows_exactly_my_tasks_due_today_and_overdue(client, crm, work):
    response = dashboard(client, crm.owner)
    ctx = response.context
    assert [t.title for t in ctx["today_tasks"]] == ["下午回电"]
    # Most recently missed first.
    assert [t.title for t in ctx["overdue_tasks"]] == ["上午发报价", "昨天的合同", "上周的回访"]
    assert (ctx["today_count"], ctx["overdue_count"]) == (1, 3)
    # Tomorrow's task is not today's: it is listed as coming up, below.
    assert [t.title for t in ctx["coming_up_tasks"]] == ["明天拜访"]
    html = response.content.decode()
    assert html.index("下午回电") < html.index("明天拜访")
    for hidden in ("有空再做", "已经做完", "取消了", "同事的待办", "同事帮忙"):
        assert hidden not in html, hidden
    assert f"/tasks/{work.later_today.pk}/complete/" in html


def test_customers_to_follow_up_are_not_listed_again(client, crm, work):
    """A follow-up is a task: the customers whose follow-up is due would repeat the
    Today and Overdue lists, so the home page has no such list."""
    html = dashboard(client, crm.owner).content.decode()
    assert 'data-testid="follow-ups"' not in html
    for name in ("今天晚些跟进", "错过的跟进"):
        assert name not in html, name


def test_counts_are_in_the_card_headers_and_overdue_is_red(client, crm, work):
    html = dashboard(client, crm.owner).content.decode()

    def badge(testid):
        part = html[html.index(f'data-testid="{testid}">') :]
        return part[part.index(">") + 1 : part.index("<")]

    assert (badge("count-today"), badge("count-overdue")) == ("1", "3")
    overdue = html[html.index('data-testid="count-overdue"') - 60 :]
    assert "bg-red" in overdue[:120]


def test_the_colleague_sees_the_task_about_the_owners_customer(client, crm, work):
    ctx = dashboard(client, crm.colleague).context
    assert [t.title for t in ctx["today_tasks"]] == ["同事帮忙"]
    assert [t.title for t in ctx["overdue_tasks"]] == ["同事的待办"]


def test_empty_states(client, crm):
    response = dashboard(client, crm.outsider)
    ctx = response.context
    assert (ctx["today_count"], ctx["overdue_count"]) == (0, 0)
    html = response.content.decode()
    assert html.count('class="empty ') >= 2
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
    with django_assert_max_num_queries(16):
        client.get("/")
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT_TREE, crm_permissions())
    client.force_login(manager)
    with django_assert_max_num_queries(22):
        assert client.get("/").context["home_role"] == "manager"


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


def test_a_manager_sees_the_team_with_who_is_behind(client, crm, work):
    t = moments()
    TaskFactory(assignee=crm.sub_member, title="下级逾期1", due_at=t.yesterday)
    TaskFactory(assignee=crm.sub_member, title="下级逾期2", due_at=t.last_week)
    TaskFactory(assignee=crm.outsider, title="别的部门逾期", due_at=t.yesterday)
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT_TREE, crm_permissions())
    response = dashboard(client, manager)
    team = {p.name: (p.overdue, p.due_today) for p in response.context["people"]}
    # The owner: earlier today, yesterday, last week; the sub-department member: two;
    # the manager: one overdue and one due later today. The other department is not in
    # the scope.
    assert team == {"王芳": (3, 1), "赵强": (2, 0), "李娜": (1, 1)}
    html = response.content.decode()
    assert 'data-testid="team"' in html and "别的部门逾期" not in html
    # The team's tasks are counted, not listed: none of theirs is on the page.
    assert "下级逾期1" not in html and "上周的回访" not in html


def test_reps_do_not_see_the_team(client, crm, work):
    response = dashboard(client, crm.owner)
    assert response.context["home_role"] == "rep"
    assert 'data-testid="team"' not in response.content.decode()


def test_a_user_without_task_permission_sees_no_task_cards(client, org):
    no_tasks = org.set_scope(org.owner, DataScope.OWN, crm_permissions(types=("customer",)))
    html = dashboard(client, no_tasks).content.decode()
    assert 'data-testid="today"' not in html and 'data-testid="overdue"' not in html
    assert response_ok(html)


def response_ok(html: str) -> bool:
    return 'data-testid="home"' in html
