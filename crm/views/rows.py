"""Rows of the busiest lists, built in Python.

A list of 100 customers spent ~20 ms in its row template (the Django template language
costs a few microseconds a node, and a row has ~40). As Django's admin does for its
change lists, the rows are put together with `format_html` here: what every row repeats
(labels, URLs, which columns the user sees) is worked out once per page, a row costs a
few calls, and escaping is the same as in a template. The page around the rows, the
table's head and the empty state stay templates.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext

from crm.html import format_html, format_html_join
from crm.models import TaskStatus
from crm.templatetags.crm_ui import day, follow_up, icon, minute, phone

_EMPTY = mark_safe("—")


def custom_cells(record) -> SafeString:
    """The list's custom-field columns (filled by the view's fill_custom_cells)."""
    return format_html_join(
        "",
        '<td class="d-none d-lg-table-cell text-truncate app-cell-custom">{}</td>',
        ((cell or _EMPTY,) for cell in getattr(record, "custom_cells", ())),
    )


def select_cell(pk, label: str, name: str) -> SafeString:
    """A bulk action's checkbox cell: "Select <name>" for a screen reader."""
    return format_html(
        '<td><input type="checkbox" name="selected" value="{}" class="form-check-input'
        ' m-0 align-middle" aria-label="{} {}"></td>',
        pk,
        label,
        name,
    )


class CustomerRows:
    """The customer list's rows for one page and one user."""

    def __init__(self, *, hidden: frozenset[str], bulk: bool, custom: bool, tags: dict):
        self.hidden, self.bulk, self.custom = hidden, bulk, custom
        self.tags = tags  # each customer's tags by its id (CustomerListView.tags_of)
        self.list_url = reverse("customers:list")
        self.select_label = gettext("Select")
        self.pool = gettext("Public pool")
        self.pool_badge = format_html('<span class="badge bg-secondary-lt">{}</span>', self.pool)

    def __call__(self, rows) -> list[SafeString]:
        return [self.row(customer) for customer in rows]

    def row(self, customer) -> SafeString:
        hidden = self.hidden
        cells = []
        if self.bulk:
            cells.append(select_cell(customer.pk, self.select_label, customer.name))
        notes = []
        if customer.type_id and "type" not in hidden:
            notes.append(format_html("<span>{}</span>", customer.type))
        if "tags" not in hidden:
            notes.extend(
                format_html('<span class="badge bg-{}-lt">{}</span>', tag.color or "blue", tag.name)
                for tag in self.tags.get(customer.pk, ())
            )
        owner = customer.owner if customer.owner_id else None
        notes.append(format_html('<span class="d-md-none">{}</span>', owner or self.pool))
        cells.append(
            format_html(
                '<td><a href="{}{}/" class="fw-medium">{}</a><div class="small text-secondary'
                ' d-flex flex-wrap gap-1 mt-1">{}</div></td>',
                self.list_url,
                customer.pk,
                customer.name,
                mark_safe("".join(notes)),  # noqa: S308 - each part from format_html
            )
        )
        if "level" not in hidden:
            level = customer.level if customer.level_id else None
            cells.append(
                format_html(
                    '<td class="d-none d-lg-table-cell">{}</td>',
                    format_html(
                        '<span class="badge bg-{}-lt">{}</span>', level.color or "secondary", level
                    )
                    if level
                    else "",
                )
            )
        cells.append(
            format_html(
                '<td class="d-none d-md-table-cell">{}</td>', owner if owner else self.pool_badge
            )
        )
        if "phone" not in hidden:
            cells.append(
                format_html(
                    '<td class="d-none d-xl-table-cell text-nowrap">{}</td>', phone(customer.phone)
                )
            )
        if self.custom:
            cells.append(custom_cells(customer))
        cells.append(
            format_html(
                '<td class="d-none d-md-table-cell text-secondary text-nowrap">{}</td>'
                '<td class="text-nowrap">{}</td>'
                '<td class="d-none d-lg-table-cell text-secondary text-nowrap">{}</td>',
                day(customer.last_activity_at) or _EMPTY,
                follow_up(customer.next_follow_up_at),
                day(customer.created_at),
            )
        )
        return mark_safe(f"<tr>{''.join(cells)}</tr>")  # noqa: S308 - parts from format_html


class ContactRows:
    """The contact list's rows for one page and one user."""

    def __init__(self, *, hidden: frozenset[str]):
        self.hidden = hidden
        self.detail_url = reverse("contacts:list")
        self.customer_url = reverse("customers:list")
        self.primary = format_html(
            '<span class="badge bg-blue-lt" title="{}">{}</span>',
            gettext("Primary contact"),
            gettext("Primary"),
        )
        self.do_not_contact = format_html(
            '<span class="badge bg-red-lt">{}</span>', gettext("Do not contact")
        )
        self.pool_badge = format_html(
            '<span class="badge bg-secondary-lt">{}</span>', gettext("Public pool")
        )
        self.none = mark_safe('<span class="text-secondary">—</span>')

    def __call__(self, rows) -> list[SafeString]:
        return [self.row(contact) for contact in rows]

    def phones(self, contact) -> SafeString:
        mobile = contact.mobile if "mobile" not in self.hidden else ""
        other = contact.phone if "phone" not in self.hidden else ""
        if not (mobile or other):
            return self.none
        html = format_html("<div>{}</div>", phone(mobile)) if mobile else ""
        if other:
            css = "small text-secondary" if mobile else ""
            html += format_html('<div class="{}">{}</div>', css, phone(other))
        return mark_safe(html)  # noqa: S308 - parts from format_html

    def row(self, contact) -> SafeString:
        hidden = self.hidden
        badges = ""
        if contact.is_primary and "is_primary" not in hidden:
            badges += self.primary
        if contact.do_not_contact and "do_not_contact" not in hidden:
            badges += self.do_not_contact
        title = contact.title if "title" not in hidden else ""
        customer_link = format_html("{}{}/", self.customer_url, contact.customer_id)
        cells = [
            format_html(
                '<td><div class="d-flex flex-wrap align-items-center gap-1"><a href="{}{}/"'
                ' class="fw-medium">{}</a>{}</div><div class="small text-secondary mt-1'
                ' text-truncate app-cell-sub">{}<span class="d-md-none">{}<a href="{}"'
                ' class="text-secondary">{}</a></span></div></td>'
                '<td class="d-none d-md-table-cell"><a href="{}" class="text-reset">{}</a></td>',
                self.detail_url,
                contact.pk,
                contact.name,
                mark_safe(badges),  # noqa: S308 - built with format_html above
                title,
                " · " if title else "",
                customer_link,
                contact.customer.name,
                customer_link,
                contact.customer.name,
            )
        ]
        if "mobile" not in hidden or "phone" not in hidden:
            cells.append(format_html('<td class="text-nowrap">{}</td>', self.phones(contact)))
        if "email" not in hidden:
            cells.append(
                format_html(
                    '<td class="d-none d-lg-table-cell text-truncate app-cell-email">{}</td>',
                    contact.email or self.none,
                )
            )
        owner = contact.customer.owner if contact.customer.owner_id else None
        cells.append(
            format_html(
                '<td class="d-none d-md-table-cell">{}</td>{}'
                '<td class="d-none d-xl-table-cell text-secondary text-nowrap">{}</td>',
                owner or self.pool_badge,
                custom_cells(contact),
                day(contact.created_at),
            )
        )
        return mark_safe(f"<tr>{''.join(cells)}</tr>")  # noqa: S308 - parts from format_html


def _url_parts(name: str) -> tuple[str, str]:
    """A URL taking one record id, as the text before and after the id: a row joins the
    three instead of reversing the URL (~10 µs each, four a task row)."""
    marker = 2_147_483_647
    prefix, suffix = reverse(name, args=[marker]).split(str(marker))
    return prefix, suffix


class TaskRows:
    """The task list's rows for one page and one user, and the row that ticking a task
    swaps in (htmx). `bulk`: the checkbox and the done/reopen buttons (a role that may
    change tasks); `next_url`: where the buttons return to without htmx."""

    def __init__(self, *, user, bulk: bool, next_url: str):
        self.user_id, self.bulk, self.next = user.pk, bulk, next_url
        self.now = timezone.now()
        self.today = timezone.localdate(self.now).isoformat()
        self.detail = _url_parts("tasks:detail")
        self.complete = _url_parts("tasks:complete")
        self.reopen = _url_parts("tasks:reopen")
        self.customer = _url_parts("customers:detail")
        self.select_label = gettext("Select")
        self.complete_label = gettext("Mark as done")
        self.reopen_label = gettext("Reopen")
        self.today_label = gettext("Today")
        self.check = icon("check")
        self.open_icon = icon("circle", "text-secondary")
        self.done_icon = icon("circle-check", "text-green")
        self.none = mark_safe('<span class="text-secondary">—</span>')
        self.status_labels = {value: str(label) for value, label in TaskStatus.choices}
        self.badges: dict[tuple[str, bool], SafeString] = {}

    def __call__(self, rows) -> list[SafeString]:
        return [self.row(task) for task in rows]

    def url(self, parts: tuple[str, str], pk) -> str:
        return f"{parts[0]}{pk}{parts[1]}"

    def due(self, task, is_open: bool, overdue: bool) -> SafeString:
        """What crm/tasks/partials/due.html shows: the due time, red when overdue,
        "Today 14:00" for today."""
        if task.due_at is None:
            return self.none
        stamp = minute(task.due_at)  # local time, Y-m-d H:i
        is_today = stamp[:10] == self.today
        if overdue:
            css = "text-danger fw-medium"
        elif not is_open:
            css = "text-secondary"
        elif is_today:
            css = "text-warning fw-medium"
        else:
            css = ""
        return format_html(
            '<span class="text-nowrap {}" title="{}" data-testid="due">{}</span>',
            css,
            stamp,
            f"{self.today_label} {stamp[11:]}" if is_today else stamp,
        )

    def status(self, task, overdue: bool) -> SafeString:
        """What crm/tasks/partials/status.html shows: the status as a coloured badge."""
        key = (task.status, overdue)
        badge = self.badges.get(key)
        if badge is None:
            if task.status == TaskStatus.DONE:
                color = "green"
            elif task.status == TaskStatus.CANCELLED:
                color = "secondary"
            elif overdue:
                color = "red"
            else:
                color = "blue"
            badge = self.badges[key] = format_html(
                '<span class="badge bg-{}-lt">{}</span>',
                color,
                self.status_labels.get(task.status, task.status),
            )
        return badge

    def state(self, task) -> tuple[bool, bool]:
        """Whether the task is open, and whether it is overdue (open, due before now)."""
        is_open = task.status == TaskStatus.OPEN
        return is_open, is_open and task.due_at is not None and task.due_at < self.now

    def toggle(self, task, is_open: bool) -> tuple[str, str, str, str]:
        """The button that ticks an open task done or reopens a closed one: its URL, its
        extra CSS class, its label and its test id."""
        if is_open:
            return self.url(self.complete, task.pk), "", self.complete_label, "complete"
        return self.url(self.reopen, task.pk), " app-check-done", self.reopen_label, "reopen"

    def customer_link(self, task) -> SafeString:
        """The task's customer after its due time, linked; empty without one."""
        if not task.customer_id:
            return mark_safe("")
        return format_html(
            ' · <a href="{}" class="text-secondary">{}</a>',
            self.url(self.customer, task.customer_id),
            task.customer.name,
        )

    def check_cell(self, task, is_open: bool) -> SafeString:
        if not self.bulk:
            return self.open_icon if is_open else self.done_icon
        action_url, css, label, testid = self.toggle(task, is_open)
        return format_html(
            '<button type="submit" class="btn btn-icon btn-sm app-check{}" formaction="{}"'
            ' name="next" value="{}" hx-post="{}" hx-vals=\'{{"variant": "row"}}\''
            ' hx-target="closest tr" hx-swap="outerHTML" title="{}" aria-label="{}: {}"'
            ' data-testid="{}">{}</button>',
            css,
            action_url,
            self.next,
            action_url,
            label,
            label,
            task.title,
            testid,
            self.check,
        )

    def row(self, task) -> SafeString:
        is_open, overdue = self.state(task)
        due = self.due(task, is_open, overdue)
        customer = task.customer if task.customer_id else None
        customer_url = self.url(self.customer, task.customer_id) if customer else ""
        cells = []
        if self.bulk:
            cells.append(select_cell(task.pk, self.select_label, task.title))
        # Under the title on a phone: due, customer, assignee if not me.
        under = [due, self.customer_link(task)]
        if task.assignee_id != self.user_id:
            under.append(format_html(" · {}", task.assignee))
        cells.append(
            format_html(
                '<td class="w-1">{}</td><td class="app-task-title"><a href="{}" class="fw-medium'
                ' text-reset">{}</a>{}<div class="small text-secondary d-md-none app-cell-sub'
                ' text-truncate">{}</div></td><td class="d-none d-md-table-cell">{}</td>'
                '<td class="d-none d-md-table-cell">{}</td>'
                '<td class="d-none d-md-table-cell">{}</td>'
                '<td class="d-none d-lg-table-cell">{}</td>'
                '<td class="d-none d-xl-table-cell text-secondary text-nowrap">{}</td>',
                self.check_cell(task, is_open),
                self.url(self.detail, task.pk),
                task.title,
                format_html(
                    '<div class="small text-secondary text-truncate app-cell-sub">{}</div>',
                    Truncator(task.notes).chars(80),
                )
                if task.notes
                else "",
                mark_safe("".join(under)),  # noqa: S308 - each part from format_html
                format_html('<a href="{}" class="text-reset">{}</a>', customer_url, customer.name)
                if customer
                else self.none,
                due,
                task.assignee,
                self.status(task, overdue),
                day(task.created_at),
            )
        )
        return format_html(
            '<tr id="task-row-{}" class="{}" data-testid="task-row">{}</tr>',
            task.pk,
            "" if is_open else "app-task-done",
            mark_safe("".join(cells)),  # noqa: S308 - parts from format_html
        )


class TaskItems(TaskRows):
    """The dashboard's task items (its overdue, today and coming-up cards), and the item
    that ticking one swaps in. Through crm/tasks/partials/item.html and due.html each
    item took ~1.2 ms: 36 of a rep's 89 ms home page with 29 tasks. `can_change`: the
    done/reopen button (a role that may change tasks), posting back to `next_url`."""

    def __init__(self, *, user, can_change: bool, next_url: str, csrf_token: str):
        super().__init__(user=user, bulk=False, next_url=next_url or "/")
        self.can_change = can_change
        self.csrf = (
            format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', csrf_token)
            if csrf_token
            else ""
        )

    def form(self, task, is_open: bool) -> SafeString:
        action_url, css, label, testid = self.toggle(task, is_open)
        return format_html(
            '<form method="post" action="{}" hx-post="{}" hx-target="closest .app-task"'
            ' hx-swap="outerHTML">{}<input type="hidden" name="next" value="{}"><input'
            ' type="hidden" name="variant" value="item"><button type="submit" class="btn'
            ' btn-icon btn-sm app-check{}" title="{}" aria-label="{}: {}" data-testid="{}">{}'
            "</button></form>",
            action_url,
            action_url,
            self.csrf,
            self.next,
            css,
            label,
            label,
            task.title,
            testid,
            self.check,
        )

    def item(self, task) -> SafeString:
        is_open, overdue = self.state(task)
        under = self.due(task, is_open, overdue) + self.customer_link(task)
        return format_html(
            '<div class="list-group-item app-task{}" id="task-item-{}" data-testid="task-item">'
            '<div class="d-flex align-items-start gap-2">{}<div class="flex-fill min-w-0">'
            '<a href="{}" class="d-block text-reset fw-medium text-truncate app-task-title">{}'
            '</a><div class="small text-secondary text-truncate">{}</div></div></div></div>',
            "" if is_open else " app-task-done",
            task.pk,
            self.form(task, is_open) if self.can_change else "",
            self.url(self.detail, task.pk),
            task.title,
            under,
        )
