"""The task list's rows, built in Python (crm/views/rows.py TaskRows) as the row template
did: escaping, the due time and status badge of open, overdue, done and cancelled tasks,
the select box and done/reopen buttons only for roles that may change tasks, what a task
about someone else's record shows, the row an htmx tick swaps in, and the queries."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.text import Truncator

from crm.filters import end_of_today, start_of_today
from crm.models import TaskStatus

from .factories import CustomerFactory, TaskFactory, give_crm_roles
from .factories.pipelines import DealFactory, LeadFactory

LIST_URL = reverse("tasks:list")
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def crm(org):
    return give_crm_roles(org)


def page(client, user, query="") -> str:
    client.force_login(user)
    response = client.get(LIST_URL + query)
    assert response.status_code == 200
    return response.content.decode()


def row_of(html: str, task) -> str:
    start = html.index(f'<tr id="task-row-{task.pk}"')
    return html[start : html.index("</tr>", start) + len("</tr>")]


def cells(row: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)


def test_title_and_notes_are_escaped_everywhere_and_notes_cut_to_80(client, crm):
    title = '<script>alert("x")</script> & 报价'
    task = TaskFactory(
        assignee=crm.owner,
        title=title,
        notes="<b>下周</b>" + "很长的备注" * 30,
        due_at=timezone.now() + timedelta(days=2),
    )
    row = row_of(page(client, crm.owner), task)
    assert "<script>" not in row and "<b>" not in row
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 报价"
    # The link, the select box's label and the done button's label.
    assert f'class="fw-medium text-reset">{escaped}</a>' in row
    assert f'aria-label="选择 {escaped}"' in row
    assert f'aria-label="标记完成: {escaped}"' in row
    notes = re.search(
        r'<div class="small text-secondary text-truncate app-cell-sub">(.*?)</div>', row
    )
    assert notes.group(1) == escape(Truncator(task.notes).chars(80))  # as |truncatechars:80
    assert notes.group(1).startswith("&lt;b&gt;下周&lt;/b&gt;很长的备注")
    assert len(task.notes) > 80 and len(unescape(notes.group(1))) <= 80


def test_overdue_today_upcoming_done_cancelled_and_undated(client, crm):
    now = timezone.now()
    mine = {"assignee": crm.owner}
    overdue = TaskFactory(**mine, title="逾期", due_at=start_of_today() - timedelta(hours=3))
    later = TaskFactory(**mine, title="今天稍后", due_at=now + (end_of_today() - now) / 2)
    upcoming = TaskFactory(**mine, title="以后", due_at=end_of_today() + timedelta(days=3))
    done = TaskFactory(
        **mine,
        title="做完了",
        due_at=start_of_today() - timedelta(hours=3),
        status=TaskStatus.DONE,
        completed_at=now,
    )
    cancelled = TaskFactory(
        **mine, title="取消了", due_at=now - timedelta(days=2), status=TaskStatus.CANCELLED
    )
    undated = TaskFactory(**mine, title="没截止")
    html = page(client, crm.owner)

    row = row_of(html, overdue)
    assert 'class=""' in row.split(">")[0]  # an open task's row is not greyed out
    due = f"{timezone.localtime(overdue.due_at):%Y-%m-%d %H:%M}"
    red = '<span class="text-nowrap text-danger fw-medium" title="{}" data-testid="due">{}</span>'
    assert red.format(due, due) in row
    assert '<span class="badge bg-red-lt">未完成</span>' in row
    assert reverse("tasks:complete", args=[overdue.pk]) in row
    assert 'hx-vals=\'{"variant": "row"}\'' in row and 'hx-target="closest tr"' in row

    row = row_of(html, later)
    local = timezone.localtime(later.due_at)
    hour = f"{local:%H:%M}"
    assert f'text-warning fw-medium" title="{local:%Y-%m-%d} {hour}"' in row
    assert f">今天 {hour}</span>" in row
    assert '<span class="badge bg-blue-lt">未完成</span>' in row

    row = row_of(html, upcoming)
    assert '<span class="text-nowrap " title=' in row
    assert "bg-blue-lt" in row

    row = row_of(html, done)
    assert 'class="app-task-done"' in row
    assert "text-danger" not in row and 'text-nowrap text-secondary"' in row
    assert '<span class="badge bg-green-lt">已完成</span>' in row
    assert reverse("tasks:reopen", args=[done.pk]) in row and 'data-testid="reopen"' in row
    assert "app-check app-check-done" in row

    row = row_of(html, cancelled)
    assert 'class="app-task-done"' in row
    assert "bg-secondary-lt" in row and "text-danger" not in row

    row = row_of(html, undated)
    assert '<td class="d-none d-md-table-cell"><span class="text-secondary">—</span></td>' in row
    assert 'data-testid="due"' not in row


def test_columns_links_and_the_phone_line(client, crm):
    customer = CustomerFactory(name="华东<精密>", owner=crm.owner)
    mine = TaskFactory(assignee=crm.owner, title="我的", customer=customer)
    theirs = TaskFactory(assignee=crm.colleague, title="同事的", customer=customer)
    html = page(client, crm.owner)

    row = row_of(html, mine)
    customer_url = reverse("customers:detail", args=[customer.pk])
    columns = cells(row)
    assert len(columns) == 8  # select, done, title, customer, due, assignee, status, created
    assert f'value="{mine.pk}"' in columns[0]
    assert f'href="{reverse("tasks:detail", args=[mine.pk])}"' in columns[2]
    phone_line = re.search(r'd-md-none app-cell-sub text-truncate">(.*?)</div>', row).group(1)
    assert phone_line == (
        f'<span class="text-secondary">—</span> · <a href="{customer_url}" class="text-secondary">'
        "华东&lt;精密&gt;</a>"
    )  # my own task does not name me
    assert columns[3] == f'<a href="{customer_url}" class="text-reset">华东&lt;精密&gt;</a>'
    assert columns[5] == "王芳"
    assert columns[7] == f"{timezone.localtime(mine.created_at):%Y-%m-%d}"

    row = row_of(html, theirs)
    assert row.count(" · 李娜</div>") == 1  # someone else's: named under the title
    assert cells(row)[5] == "李娜"


def test_a_read_only_role_gets_no_select_box_nor_buttons(client, org):
    crm = give_crm_roles(org, actions=("view",))
    open_task = TaskFactory(assignee=crm.owner, title="看看")
    done = TaskFactory(assignee=crm.owner, title="看过", status=TaskStatus.DONE)
    html = page(client, crm.owner)
    for task in (open_task, done):
        row = row_of(html, task)
        assert 'type="checkbox"' not in row and "<button" not in row
        assert len(cells(row)) == 7
    assert "text-secondary" in cells(row_of(html, open_task))[0]  # an open circle
    assert "text-green" in cells(row_of(html, done))[0]  # a ticked one
    assert "data-select-all" not in html


def test_the_return_address_of_the_buttons_is_the_page_escaped(client, crm):
    task = TaskFactory(assignee=crm.owner, title="回到原处")
    row = row_of(page(client, crm.owner, "?sort=-due&x=%22%3E%3Ci%3E"), task)
    assert 'name="next" value="/tasks/?sort=-due&amp;x=%22%3E%3Ci%3E"' in row


def test_a_task_about_another_reps_customer_shows_it_as_the_task_page_does(client, crm):
    """The assignee sees the customer's name and link on the row, as on the task's own
    page (the row template did the same); the outsider does not see the task at all."""
    customer = CustomerFactory(name="刘洋的客户", owner=crm.outsider)
    task = TaskFactory(assignee=crm.owner, title="帮刘洋跟进", customer=customer)
    row = row_of(page(client, crm.owner), task)
    assert "刘洋的客户" in row
    client.force_login(crm.owner)
    assert "刘洋的客户" in client.get(reverse("tasks:detail", args=[task.pk])).content.decode()


def test_a_task_about_a_lead_or_deal_the_viewer_cannot_see_does_not_name_it(client, crm):
    deal = DealFactory(owner=crm.outsider, title="刘洋的大单")
    lead = LeadFactory(owner=crm.outsider, person_name="刘洋的线索人")
    tasks = [
        TaskFactory(
            assignee=crm.owner,
            title=f"跟进{i}",
            subject_type=ContentType.objects.get_for_model(record),
            subject_id=record.pk,
        )
        for i, record in enumerate((deal, lead))
    ]
    html = page(client, crm.owner)
    for task in tasks:
        assert f'id="task-row-{task.pk}"' in html
    assert "刘洋的大单" not in html and "刘洋的线索人" not in html
    assert deal.customer.name not in html


def test_the_htmx_row_is_the_row_the_list_shows(client, crm):
    task = TaskFactory(assignee=crm.owner, title="打勾", due_at=timezone.now() - timedelta(days=1))
    client.force_login(crm.owner)
    response = client.post(
        reverse("tasks:complete", args=[task.pk]), {"variant": "row", "next": LIST_URL}, **HTMX
    )
    swapped = response.content.decode()
    assert swapped == row_of(page(client, crm.owner), task)
    assert 'class="app-task-done"' in swapped and 'data-testid="reopen"' in swapped
    response = client.post(
        reverse("tasks:reopen", args=[task.pk]), {"variant": "row", "next": LIST_URL}, **HTMX
    )
    assert response.content.decode() == row_of(page(client, crm.owner), task)


@pytest.mark.parametrize("scope", ["own", "department_tree"])
def test_queries_stay_the_same_with_more_rows_and_people_load_at_most_once(client, org, scope):
    crm = give_crm_roles(org, scope=scope)
    client.force_login(crm.owner)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST_URL).status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    TaskFactory(assignee=crm.owner, customer=CustomerFactory(owner=crm.owner))
    queries()  # the first request of a session loads it
    few = queries()
    for _ in range(20):
        TaskFactory(
            assignee=crm.colleague,
            customer=CustomerFactory(owner=crm.owner),
            notes="备注",
            due_at=timezone.now(),
        )
    many = queries()
    assert len(many) == len(few)
    # The people in scope: the assignee filter's choices and the reassign picker share
    # one list (at most one query).
    people = [
        sql
        for sql in many
        if sql.startswith('SELECT "accounts_user"') and 'ORDER BY "accounts_user"."name"' in sql
    ]
    assert len(people) <= 1, people
    picker = client.get(LIST_URL).content.decode().split('name="to_assignee"')[1]
    assert f'<option value="{crm.owner.pk}">' in picker.split("</select>")[0]


def test_the_calendar_builds_no_rows(client, crm):
    TaskFactory(assignee=crm.owner, title="日程里的", due_at=timezone.now())
    client.force_login(crm.owner)
    response = client.get(reverse("tasks:calendar") + "?assignee=me")
    assert response.status_code == 200
    html = response.content.decode()
    assert "日程里的" in html and 'data-testid="task-row"' not in html
