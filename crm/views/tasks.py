"""Task pages: my tasks (today, overdue, upcoming), create, edit, detail, and completing
or reopening a task, in place when asked by htmx (the list and the dashboard). Ticking a
follow-up task in place offers its outcome form (what happened, next follow-up); the
outcome page does the same without htmx. The calendar lives in tasks_calendar."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts import access

from ..filters import TaskFilter, people_in_scope
from ..forms import TaskForm, TaskOutcomeForm
from ..models import Task, TaskStatus, open_first
from ..params import id_param
from ..services import tasks as services
from . import dashboard
from .base import (
    BuiltinView,
    BulkAction,
    RecordCreateView,
    RecordDetailView,
    RecordListView,
    RecordUpdateView,
)
from .rows import TaskRows


def complete_selected(queryset, user, request):
    count = services.complete_tasks(tasks=queryset, by=user)
    return _("%(count)s tasks completed.") % {"count": count}


def reassign(queryset, user, request):
    choice = id_param(request.POST, "to_assignee")
    target = access.users_in_scope(user).filter(pk=choice).first() if choice else None
    if target is None:
        return messages.ERROR, _("Choose who takes over the tasks.")
    count = services.reassign_tasks(tasks=queryset, to=target, by=user)
    return _("%(count)s tasks reassigned to %(name)s.") % {"count": count, "name": target}


class TaskListView(RecordListView):
    importable = False  # tasks come from follow-ups and rules, not files
    model = Task
    filterset_class = TaskFilter
    template_name = "crm/tasks/list.html"
    select_related = ("assignee", "customer")
    sort_fields = {"due": "due_at", "created": "created_at"}
    default_sort = "due"
    # Scoped through the customer as well as the assignee: counted in any order (a rep's
    # tasks are a few percent of all, which a walk along the list's order reads through).
    count_in_order = False
    builtin_views = (
        BuiltinView("today", gettext_lazy("Today"), "assignee=me&status=open&due=today"),
        BuiltinView("overdue", gettext_lazy("Overdue"), "assignee=me&due=overdue"),
        BuiltinView("upcoming", gettext_lazy("Upcoming"), "assignee=me&status=open&due=upcoming"),
        BuiltinView("done", gettext_lazy("Completed"), "assignee=me&status=done"),
    )
    bulk_actions = (
        BulkAction("complete", gettext_lazy("Mark as done"), complete_selected),
        BulkAction("reassign", gettext_lazy("Reassign to…"), reassign),
    )

    def ordering_for(self, sort: str) -> list:
        # Open tasks before done or cancelled ones; tasks without a due time last.
        field = self.sort_fields[sort.lstrip("-")]
        if sort.startswith("-"):
            return [open_first(), F(field).desc(nulls_last=True), "-pk"]
        return [open_first(), F(field).asc(nulls_last=True), "pk"]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        bulk = bool(context["bulk_actions"])
        # The filter's assignee choices loaded these people already (one query).
        context["assignees"] = people_in_scope(self.request) if bulk else []
        context["next"] = self.request.get_full_path()
        context["rows"] = self.rows(
            context["object_list"],
            TaskRows(user=self.request.user, bulk=bulk, next_url=context["next"]),
        )
        return context

    @staticmethod
    def rows(tasks, build: TaskRows):
        """The rows, built in Python (crm/views/rows.py: 100 rows cost ~110 ms of CPU
        through the row template, ~13 ms there) as the list template reads them: a
        generator, so a page that shows none (the calendar, a subclass; the filter
        panel's form) never builds them."""
        for task in tasks:
            yield build.row(task)


class TaskDetailView(RecordDetailView):
    model = Task
    template_name = "crm/tasks/detail.html"

    def get_queryset(self):
        return Task.objects.select_related(
            "assignee", "customer__owner", "created_by", "activity__kind"
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_log_outcome"] = context["can_change"] and may_log_outcome(
            self.request.user, self.object
        )
        return context


class TaskCreateView(RecordCreateView):
    model = Task
    form_class = TaskForm
    template_name = "crm/tasks/form.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        customer = id_param(self.request.GET, "customer")
        default = self.customer_return(customer) if customer else None
        context["cancel_url"] = self.safe_next(default or reverse("tasks:list"))
        return context

    def get_initial(self):
        initial = super().get_initial()
        customer = id_param(self.request.GET, "customer")
        if customer:
            initial["customer"] = customer
        return initial

    def form_valid(self, form):
        task = form.instance
        self.object = task
        return self.save_through(
            form,
            lambda: services.create_task(task=task, by=self.request.user),
            message=_("Task “%(title)s” added.") % {"title": task.title},
            success_url=lambda: (
                self.customer_return(task.customer_id) or reverse("tasks:detail", args=[task.pk])
            ),
        )


class TaskUpdateView(RecordUpdateView):
    model = Task
    form_class = TaskForm
    template_name = "crm/tasks/form.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = self.safe_next(reverse("tasks:detail", args=[self.object.pk]))
        return context

    def form_valid(self, form):
        return self.save_through(
            form,
            lambda: services.update_task(task=form.instance, by=self.request.user),
            message=_("Task “%(title)s” saved.") % {"title": form.instance},
            success_url=reverse("tasks:detail", args=[form.instance.pk]),
        )


# --- Completing and reopening ---------------------------------------------------------

# What an htmx request asks back: a row of the task list (built as the list builds its
# rows) or an item of the dashboard.
ROW = "row"
ITEM_TEMPLATE = "crm/tasks/partials/item.html"


def _safe_next(request) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def _set_status(request, pk: int, change, done_message: str, *, offer_outcome=False):
    task = access.get_object_for_user_or_404(
        request.user, Task.objects.select_related("customer"), pk=pk
    )
    task = change(task=task, by=request.user)
    next_url = _safe_next(request)
    if request.htmx:
        variant = request.POST.get("variant", "")
        context = {
            "task": Task.objects.select_related("assignee", "customer").get(pk=task.pk),
            "next": next_url or reverse("tasks:list"),
            "show_select": access.has_permission(request.user, "task", "change"),
            "swapped": True,
        }
        if variant == ROW:
            rows = TaskRows(
                user=request.user, bulk=context["show_select"], next_url=context["next"]
            )
            html = rows.row(context["task"])
        else:
            # The dashboard's counts change too (out-of-band swaps).
            context.update(dashboard.task_counts(request.user))
            context["can_change_tasks"] = context["show_select"]
            html = render_to_string(ITEM_TEMPLATE, context, request)
        if offer_outcome and task.status == TaskStatus.DONE and may_log_outcome(request.user, task):
            # A follow-up just ticked off asks how it went (a dialog appended to the page).
            html += render_to_string(
                "crm/tasks/partials/outcome_modal.html",
                {
                    "task": context["task"],
                    "form": TaskOutcomeForm(task=task, user=request.user),
                    "variant": variant,
                    "next": context["next"],
                },
                request,
            )
        return HttpResponse(html)
    messages.success(request, done_message % {"title": task.title})
    return HttpResponseRedirect(next_url or reverse("tasks:detail", args=[task.pk]))


@login_required
@require_POST
def complete(request, pk: int):
    return _set_status(
        request, pk, services.complete_task, _("Task “%(title)s” done."), offer_outcome=True
    )


@login_required
@require_POST
def reopen(request, pk: int):
    return _set_status(request, pk, services.reopen_task, _("Task “%(title)s” reopened."))


# --- How a follow-up went ----------------------------------------------------------------


def may_log_outcome(user, task: Task) -> bool:
    """Whether completing `task` may log how it went: a follow-up task the user may
    change, and a role that may log follow-ups."""
    return (
        services.is_follow_up(task)
        and access.has_permission(user, "activity", "add")
        and access.can(user, task, "change")
    )


@login_required
def outcome(request, pk: int):
    """Complete a follow-up task saying how it went (GET: the form; POST: complete, log
    the follow-up and plan the next one in one step). From the dialog that ticking the
    task opens (htmx: the form, or what was saved, swapped in place) or from the task's
    page (a page of its own)."""
    task = access.get_object_for_user_or_404(
        request.user, Task.objects.select_related("customer", "assignee"), pk=pk
    )
    if not services.is_follow_up(task):
        raise Http404
    if not may_log_outcome(request.user, task):
        raise PermissionDenied
    params = request.POST if request.method == "POST" else request.GET
    variant = params.get("variant", "")
    next_url = _safe_next(request) or (
        url_if_safe(request, request.GET.get("next", "")) if request.method == "GET" else ""
    )
    form = TaskOutcomeForm(request.POST or None, task=task, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            activity = services.complete_follow_up(
                task=task,
                by=request.user,
                kind=data["kind"],
                content=data["content"],
                next_follow_up_at=data.get("next_follow_up_at"),
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            planned = activity.follow_up_tasks.first()
            if request.htmx:
                context = {"task": task, "activity": activity, "planned": planned}
                if variant == "item":
                    context.update(dashboard.task_counts(request.user), oob=True)
                return render(request, "crm/tasks/partials/outcome_saved.html", context)
            messages.success(request, _("Follow-up logged for “%(title)s”.") % {"title": task})
            return HttpResponseRedirect(
                next_url
                or (
                    reverse("customers:detail", args=[task.customer_id])
                    if task.customer_id
                    else reverse("tasks:detail", args=[task.pk])
                )
            )
    context = {"task": task, "form": form, "variant": variant, "next": next_url}
    if request.htmx:
        return render(request, "crm/tasks/partials/outcome_form.html", context)
    return render(request, "crm/tasks/outcome.html", context)


def url_if_safe(request, target: str) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""
