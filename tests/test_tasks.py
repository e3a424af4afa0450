"""Task pages: my tasks (today, overdue, upcoming, done), create, edit, detail, and
completing or reopening a task (plain POST or htmx, from the list or the dashboard).

Times are built around the real clock in the site's time zone (Asia/Shanghai): a task
"earlier today" is due halfway between midnight and now, "later today" halfway between
now and midnight, so no test depends on the hour it runs at.
"""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import DataScope
from crm.filters import end_of_today, start_of_today
from crm.models import Change, Task, TaskStatus

from .factories import (
    ActivityFactory,
    CustomerFactory,
    TaskFactory,
    crm_permissions,
    give_crm_roles,
)

LIST_URL = reverse("tasks:list")
CREATE_URL = reverse("tasks:create")
HTMX = {"HTTP_HX_REQUEST": "true"}


def moments():
    now = timezone.now()
    start, end = start_of_today(), end_of_today()
    return SimpleNamespace(
        now=now,
        yesterday=start - timedelta(hours=3),
        earlier_today=start + (now - start) / 2,
        later_today=now + (end - now) / 2,
        tomorrow=end + timedelta(hours=10),
    )


@pytest.fixture
def crm(org):
    return give_crm_roles(org)


@pytest.fixture
def customer(crm):
    return CustomerFactory(name="华东精密机械有限公司", owner=crm.owner)


@pytest.fixture
def tasks(crm, customer):
    """The owner's tasks at known times, one of each kind."""
    t = moments()
    mine = {"assignee": crm.owner}
    return SimpleNamespace(
        later_today=TaskFactory(
            **mine, title="今天下午回电", due_at=t.later_today, customer=customer
        ),
        earlier_today=TaskFactory(**mine, title="今天上午发报价", due_at=t.earlier_today),
        yesterday=TaskFactory(**mine, title="昨天没做完", due_at=t.yesterday),
        tomorrow=TaskFactory(**mine, title="明天去拜访", due_at=t.tomorrow),
        done_today=TaskFactory(
            **mine,
            title="今天已完成",
            due_at=t.earlier_today,
            status=TaskStatus.DONE,
            completed_at=t.now,
        ),
        no_due=TaskFactory(**mine, title="有空再做"),
    )


def client_for(client, user):
    client.force_login(user)
    return client


def url(name, task):
    return reverse(f"tasks:{name}", args=[task.pk])


def titles(response) -> set[str]:
    return {t.title for t in response.context["object_list"]}


# --- List and its built-in views ------------------------------------------------------

BUILTIN = {
    "today": "?assignee=me&status=open&due=today",
    "overdue": "?assignee=me&due=overdue",
    "upcoming": "?assignee=me&status=open&due=upcoming",
    "done": "?assignee=me&status=done",
}


def test_builtin_views_show_exactly_my_tasks_of_each_kind(client, crm, tasks):
    TaskFactory(assignee=crm.colleague, title="同事的事", due_at=moments().later_today)
    c = client_for(client, crm.owner)
    assert titles(c.get(LIST_URL + BUILTIN["today"])) == {"今天下午回电", "今天上午发报价"}
    assert titles(c.get(LIST_URL + BUILTIN["overdue"])) == {"今天上午发报价", "昨天没做完"}
    assert titles(c.get(LIST_URL + BUILTIN["upcoming"])) == {"明天去拜访"}
    assert titles(c.get(LIST_URL + BUILTIN["done"])) == {"今天已完成"}
    everything = c.get(LIST_URL)
    assert titles(everything) == {t.title for t in vars(tasks).values()}
    views = c.get(LIST_URL + BUILTIN["overdue"]).context["builtin_views"]
    assert [(v.key, active) for v, active in views] == [
        ("today", False),
        ("overdue", True),
        ("upcoming", False),
        ("done", False),
    ]


def test_list_sorts_open_tasks_first_by_due_with_undated_ones_last(client, crm, tasks):
    c = client_for(client, crm.owner)
    ordered = [t.title for t in c.get(LIST_URL).context["object_list"]]
    assert ordered == [
        "昨天没做完",
        "今天上午发报价",
        "今天下午回电",
        "明天去拜访",
        "有空再做",
        "今天已完成",
    ]
    newest_due_first = [t.title for t in c.get(LIST_URL + "?sort=-due").context["object_list"]]
    assert newest_due_first == [
        "明天去拜访",
        "今天下午回电",
        "今天上午发报价",
        "昨天没做完",
        "有空再做",
        "今天已完成",
    ]
    assert c.get(LIST_URL + "?sort=created").status_code == 200


def test_list_row_shows_customer_due_in_red_when_overdue_and_a_done_button(client, crm, tasks):
    html = client_for(client, crm.owner).get(LIST_URL).content.decode()
    assert reverse("customers:detail", args=[tasks.later_today.customer_id]) in html
    assert url("complete", tasks.yesterday) in html
    assert url("reopen", tasks.done_today) in html
    row = html[html.index(f'id="task-row-{tasks.yesterday.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "text-danger" in row


def test_list_queries_do_not_grow_with_rows(client, crm, django_assert_max_num_queries):
    for i in range(30):
        TaskFactory(
            assignee=crm.owner,
            title=f"任务{i}",
            customer=CustomerFactory(owner=crm.owner),
            due_at=moments().tomorrow,
        )
    c = client_for(client, crm.owner)
    with django_assert_max_num_queries(10):
        assert c.get(LIST_URL).status_code == 200


def test_outsider_sees_none_of_them_in_any_view_or_filter(client, crm, tasks):
    own = TaskFactory(assignee=crm.outsider, title="外部的事", due_at=moments().later_today)
    c = client_for(client, crm.outsider)
    queries = [
        "",
        *BUILTIN.values(),
        "?status=open",
        "?status=done",
        "?due=none",
        f"?assignee={crm.owner.pk}",
        f"?department={crm.team1.pk}",
        "?q=今天",
        "?sort=-created",
    ]
    theirs = {t.title for t in vars(tasks).values()}
    for query in queries:
        response = c.get(LIST_URL + query)
        assert response.status_code == 200, query
        assert not titles(response) & theirs, query
        assert url("detail", tasks.yesterday) not in response.content.decode(), query
    assert titles(c.get(LIST_URL)) == {own.title}


def test_a_task_for_someone_about_anothers_customer_is_visible_to_both(client, crm, customer):
    task = TaskFactory(assignee=crm.colleague, title="帮王芳回访", customer=customer)
    for user in (crm.owner, crm.colleague):
        c = client_for(client, user)
        assert "帮王芳回访" in titles(c.get(LIST_URL)), user
        assert c.get(url("detail", task)).status_code == 200, user
        assert c.get(url("edit", task)).status_code == 200, user
    c = client_for(client, crm.outsider)
    assert "帮王芳回访" not in titles(c.get(LIST_URL))
    assert c.get(url("detail", task)).status_code == 404


def test_list_needs_the_view_permission(client, org):
    nobody = org.set_scope(org.owner, DataScope.OWN, crm_permissions(types=("customer",)))
    assert client_for(client, nobody).get(LIST_URL).status_code == 403


# --- Bulk actions ---------------------------------------------------------------------


def test_bulk_complete_selected(client, crm, tasks):
    c = client_for(client, crm.owner)
    response = c.post(
        LIST_URL,
        {
            "action": "complete",
            "selected": [tasks.later_today.pk, tasks.yesterday.pk, tasks.done_today.pk],
            "query": "assignee=me",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == LIST_URL + "?assignee=me"
    for task in (tasks.later_today, tasks.yesterday):
        task.refresh_from_db()
        assert task.status == TaskStatus.DONE and task.completed_at is not None
    tasks.tomorrow.refresh_from_db()
    assert tasks.tomorrow.status == TaskStatus.OPEN
    assert Change.objects.filter(record_id=tasks.yesterday.pk, changes__0__field="status")


def test_bulk_actions_on_ids_the_outsider_cannot_see_change_nothing(client, crm, tasks):
    c = client_for(client, crm.outsider)
    ids = [t.pk for t in vars(tasks).values()]
    c.post(LIST_URL, {"action": "complete", "selected": ids})
    c.post(LIST_URL, {"action": "reassign", "selected": ids, "to_assignee": crm.outsider.pk})
    for task in vars(tasks).values():
        before_status = task.status
        task.refresh_from_db()
        assert task.assignee == crm.owner
        assert task.status == before_status
    assert not Change.objects.exists()


def test_manager_reassigns_within_scope_only(client, crm, tasks):
    manager = crm.set_scope(crm.colleague, DataScope.DEPARTMENT, crm_permissions())
    c = client_for(client, manager)
    assert {p.pk for p in c.get(LIST_URL).context["assignees"]} == {crm.owner.pk, manager.pk}
    response = c.post(
        LIST_URL,
        {"action": "reassign", "selected": [tasks.tomorrow.pk], "to_assignee": manager.pk},
        follow=True,
    )
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    tasks.tomorrow.refresh_from_db()
    assert tasks.tomorrow.assignee == manager
    change = Change.objects.get(record_id=tasks.tomorrow.pk)
    assert change.changes == [{"field": "assignee", "old": "王芳", "new": "李娜"}]
    # Someone outside the manager's scope cannot be given tasks.
    for target in (crm.outsider.pk, "abc", ""):
        response = c.post(
            LIST_URL,
            {"action": "reassign", "selected": [tasks.no_due.pk], "to_assignee": target},
            follow=True,
        )
        assert response.status_code == 200
        assert [m.level_tag for m in response.context["messages"]] == ["error"]
    tasks.no_due.refresh_from_db()
    assert tasks.no_due.assignee == crm.owner


def test_a_rep_with_own_scope_can_only_reassign_to_themselves(client, crm, tasks):
    c = client_for(client, crm.owner)
    assert [p.pk for p in c.get(LIST_URL).context["assignees"]] == [crm.owner.pk]
    c.post(
        LIST_URL,
        {"action": "reassign", "selected": [tasks.tomorrow.pk], "to_assignee": crm.colleague.pk},
    )
    tasks.tomorrow.refresh_from_db()
    assert tasks.tomorrow.assignee == crm.owner


# --- Create ---------------------------------------------------------------------------


def form_data(**overrides):
    data = {"title": "给客户寄样品", "notes": "顺丰到付", "due_at": "2030-01-02T09:30"}
    data.update(overrides)
    return data


def test_create_form_defaults_to_me_and_the_customer_asked_for(client, crm, customer):
    response = client_for(client, crm.owner).get(CREATE_URL + f"?customer={customer.pk}")
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["assignee"] == crm.owner.pk
    assert form.initial["customer"] == customer.pk
    assert [u.pk for u in form.fields["assignee"].queryset] == [crm.owner.pk]
    assert 'type="datetime-local"' in response.content.decode()


def test_create_saves_the_due_time_in_the_local_time_zone(client, crm, customer):
    c = client_for(client, crm.owner)
    response = c.post(
        CREATE_URL + f"?customer={customer.pk}",
        form_data(assignee=crm.owner.pk, customer=customer.pk),
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.pk])
    task = Task.objects.get(title="给客户寄样品")
    assert timezone.localtime(task.due_at).strftime("%Y-%m-%d %H:%M") == "2030-01-02 09:30"
    assert task.due_at.utcoffset() is not None
    assert (task.assignee, task.customer, task.created_by) == (crm.owner, customer, crm.owner)
    assert task.status == TaskStatus.OPEN
    assert Change.objects.filter(record_id=task.pk, action="created").exists()


def test_create_without_customer_goes_to_the_task(client, crm):
    response = client_for(client, crm.owner).post(
        CREATE_URL, form_data(assignee=crm.owner.pk, due_at="")
    )
    task = Task.objects.get(title="给客户寄样品")
    assert response["Location"] == url("detail", task)
    assert task.customer is None and task.due_at is None


@pytest.mark.parametrize(
    ("field", "bad"),
    [("title", ""), ("due_at", "下周一"), ("assignee", "outsider"), ("customer", "foreign")],
)
def test_create_rejects_bad_input_and_saves_nothing(client, crm, field, bad):
    foreign = CustomerFactory(owner=crm.outsider)
    values = {"outsider": crm.outsider.pk, "foreign": foreign.pk}
    data = form_data(assignee=crm.owner.pk)
    data[field] = values.get(bad, bad)
    response = client_for(client, crm.owner).post(CREATE_URL, data)
    assert response.status_code == 200
    assert list(response.context["form"].errors) == [field]
    assert 'data-testid="form-errors"' in response.content.decode()
    assert not Task.objects.exists()


def test_create_needs_the_add_permission(client, org):
    viewer = org.set_scope(org.owner, DataScope.OWN, crm_permissions(("view", "change")))
    c = client_for(client, viewer)
    assert c.get(CREATE_URL).status_code == 403
    assert c.post(CREATE_URL, form_data(assignee=viewer.pk)).status_code == 403
    assert not Task.objects.exists()


def test_pool_customers_may_get_tasks(client, crm):
    pool = CustomerFactory(owner=None, name="公海客户")
    response = client_for(client, crm.owner).post(
        CREATE_URL, form_data(assignee=crm.owner.pk, customer=pool.pk)
    )
    assert response.status_code == 302
    assert Task.objects.get().customer == pool


# --- Detail and edit ------------------------------------------------------------------


def test_detail_shows_the_task_with_a_complete_button(client, crm, tasks):
    response = client_for(client, crm.owner).get(url("detail", tasks.later_today))
    assert response.status_code == 200
    html = response.content.decode()
    assert "今天下午回电" in html and "华东精密机械有限公司" in html
    assert url("complete", tasks.later_today) in html
    assert url("edit", tasks.later_today) in html
    done = client.get(url("detail", tasks.done_today)).content.decode()
    assert url("reopen", tasks.done_today) in done


def test_edit_shows_local_time_and_saves_with_history(client, crm, tasks):
    c = client_for(client, crm.owner)
    task = tasks.tomorrow
    response = c.get(url("edit", task))
    assert response.status_code == 200
    local = timezone.localtime(task.due_at).strftime("%Y-%m-%dT%H:%M")
    assert f'value="{local}"' in response.content.decode()
    response = c.post(url("edit", task), form_data(title="明天下午去拜访", assignee=crm.owner.pk))
    assert response.status_code == 302
    assert response["Location"] == url("detail", task)
    task.refresh_from_db()
    assert task.title == "明天下午去拜访"
    change = Change.objects.get(record_id=task.pk, action="updated")
    assert {"field": "title", "old": "明天去拜访", "new": "明天下午去拜访"} in change.changes


def test_edit_of_a_visible_but_not_changeable_task_is_forbidden(client, org, tasks):
    viewer = org.set_scope(org.colleague, DataScope.ALL, crm_permissions(("view",)))
    c = client_for(client, viewer)
    assert c.get(url("detail", tasks.tomorrow)).status_code == 200
    assert (
        url("complete", tasks.tomorrow) not in c.get(url("detail", tasks.tomorrow)).content.decode()
    )
    assert c.get(url("edit", tasks.tomorrow)).status_code == 403
    assert c.post(url("edit", tasks.tomorrow), form_data(assignee=org.owner.pk)).status_code == 403
    assert c.post(url("complete", tasks.tomorrow)).status_code == 403
    tasks.tomorrow.refresh_from_db()
    assert tasks.tomorrow.status == TaskStatus.OPEN


# --- Complete and reopen --------------------------------------------------------------


def test_complete_then_reopen(client, crm, tasks):
    c = client_for(client, crm.owner)
    task = tasks.later_today
    response = c.post(url("complete", task))
    assert response.status_code == 302
    assert response["Location"] == url("detail", task)
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE and task.completed_at is not None
    response = c.post(url("reopen", task), {"next": "/tasks/?status=open"})
    assert response["Location"] == "/tasks/?status=open"
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and task.completed_at is None


def test_complete_goes_back_to_a_safe_next_only(client, crm, tasks):
    c = client_for(client, crm.owner)
    response = c.post(url("complete", tasks.later_today), {"next": "/customers/1/"})
    assert response["Location"] == "/customers/1/"
    response = c.post(url("complete", tasks.tomorrow), {"next": "https://evil.example/"})
    assert response["Location"] == url("detail", tasks.tomorrow)


def test_complete_and_reopen_are_post_only(client, crm, tasks):
    c = client_for(client, crm.owner)
    assert c.get(url("complete", tasks.later_today)).status_code == 405
    assert c.get(url("reopen", tasks.done_today)).status_code == 405


def test_htmx_complete_from_the_list_returns_the_updated_row(client, crm, tasks):
    c = client_for(client, crm.owner)
    response = c.post(url("complete", tasks.yesterday), {"variant": "row"}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="task-row-{tasks.yesterday.pk}"')
    assert url("reopen", tasks.yesterday) in html
    assert "app-task-done" in html
    response = c.post(url("reopen", tasks.yesterday), {"variant": "row"}, **HTMX)
    assert url("complete", tasks.yesterday) in response.content.decode()


def test_htmx_complete_from_the_dashboard_updates_the_counts(client, crm, tasks):
    c = client_for(client, crm.owner)
    response = c.post(url("complete", tasks.yesterday), {"variant": "item", "next": "/"}, **HTMX)
    html = response.content.decode()
    assert f'id="task-item-{tasks.yesterday.pk}"' in html
    assert url("reopen", tasks.yesterday) in html
    # Still overdue: earlier today; still due later today: one.
    assert 'id="count-overdue" hx-swap-oob="true"' in html
    overdue = html[html.index('id="count-overdue"') :]
    assert overdue[overdue.index(">") + 1 : overdue.index("</span>")] == "1"
    today = html[html.index('id="count-today"') :]
    assert today[today.index(">") + 1 : today.index("</span>")] == "1"
    assert "follow-ups-card" not in html  # the home lists tasks, not the customers again


def test_outsider_gets_404_on_every_task_url_and_changes_nothing(client, crm, tasks):
    c = client_for(client, crm.outsider)
    for task in (tasks.later_today, tasks.done_today):
        assert c.get(url("detail", task)).status_code == 404
        assert c.get(url("edit", task)).status_code == 404
        assert c.post(url("edit", task), form_data(assignee=crm.outsider.pk)).status_code == 404
        assert c.post(url("complete", task)).status_code == 404
        assert c.post(url("reopen", task)).status_code == 404
        assert c.post(url("complete", task), {"variant": "row"}, **HTMX).status_code == 404
    tasks.later_today.refresh_from_db()
    tasks.done_today.refresh_from_db()
    assert tasks.later_today.status == TaskStatus.OPEN
    assert tasks.done_today.status == TaskStatus.DONE
    assert tasks.later_today.title == "今天下午回电"


def test_sign_in_required_everywhere(client, tasks):
    task = tasks.later_today
    for target in (LIST_URL, CREATE_URL, url("detail", task), url("edit", task)):
        assert client.get(target).status_code == 302, target
    for target in (url("complete", task), url("reopen", task)):
        response = client.post(target)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


def test_completing_a_planned_follow_up_clears_the_plan_and_reopening_restores_it(
    client, crm, customer
):
    due = moments().later_today
    customer.next_follow_up_at = due
    customer.save()
    activity = ActivityFactory(customer=customer, next_follow_up_at=due)
    task = TaskFactory(assignee=crm.owner, customer=customer, activity=activity, due_at=due)
    c = client_for(client, crm.owner)
    c.post(url("complete", task))
    customer.refresh_from_db()
    assert customer.next_follow_up_at is None
    c.post(url("reopen", task))
    customer.refresh_from_db()
    assert customer.next_follow_up_at == due
