"""The task calendar (日程, /tasks/calendar/): a week or a month of the tasks and the
customers' planned next follow-ups that the task list's filters select, inside the user's
data scope. On a phone the same page reads as a list of days."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

import django_filters as filters
from django.http import HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from .. import dates, selectors
from ..filters import DepartmentFilter, PersonFilter, SearchFilter, team_choices
from ..forms import CALENDAR_MONTH, CALENDAR_WEEK, TaskCalendarForm
from ..models import Customer, TaskStatus
from .base import FILTERS_FORM_PARAM
from .tasks import TaskListView

# The calendar's own parameters; every other one is a filter of the task list.
CALENDAR_PARAMS = {"view", "date", "page", "per_page", "sort", FILTERS_FORM_PARAM}
# A month cell lists this many entries, then links to the day's week.
MONTH_CELL_LIMIT = 4


class FollowUpFilter(filters.FilterSet):
    """The task list's filters, read for customers' planned follow-ups: the assignee is
    the customer's owner, the search its name; a filter that only tasks can answer
    (done, completed between) leaves no plans."""

    q = SearchFilter(fields=("name",))
    assignee = PersonFilter(choices=(), path="owner")
    department = DepartmentFilter(path="owner")
    status = filters.CharFilter(method="filter_status")
    due = filters.CharFilter(method="filter_due")
    due_on = dates.DateFromToRangeFilter(field_name="next_follow_up_at")
    completed = dates.DateFromToRangeFilter(method="filter_completed")

    class Meta:
        model = Customer
        fields: list[str] = []

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["assignee"].extra["choices"] = team_choices(request)

    def filter_status(self, qs, name, value):
        return qs if value in ("", TaskStatus.OPEN) else qs.none()

    def filter_due(self, qs, name, value):
        if value == selectors.TASK_DUE_TODAY:
            return qs.filter(
                next_follow_up_at__gte=selectors.start_of_today(),
                next_follow_up_at__lt=selectors.end_of_today(),
            )
        if value == selectors.TASK_OVERDUE:
            return qs.filter(selectors.follow_up_q(selectors.FOLLOW_UP_OVERDUE))
        if value == selectors.TASK_UPCOMING:
            return qs.filter(next_follow_up_at__gte=selectors.end_of_today())
        if value == selectors.TASK_NO_DUE:
            return qs.none()
        return qs

    def filter_completed(self, qs, name, value):
        return qs.none() if value and (value.start or value.stop) else qs


@dataclass(frozen=True)
class Period:
    view: str
    day: date  # the day asked for
    first: date  # the first day shown
    last: date  # the last day shown
    month_first: date | None = None  # the month view's month
    month_last: date | None = None

    @classmethod
    def around(cls, view: str, day: date) -> Period:
        if view == CALENDAR_MONTH:
            month_first = day.replace(day=1)
            month_last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
            first = month_first - timedelta(days=month_first.weekday())
            last = month_last + timedelta(days=6 - month_last.weekday())
            return cls(view, day, first, last, month_first, month_last)
        first = day - timedelta(days=day.weekday())
        return cls(view, day, first, first + timedelta(days=6))

    @property
    def previous(self) -> date | None:
        """A day of the period before, if the calendar may show it."""
        if self.month_first is not None:
            day = (self.month_first - timedelta(days=1)).replace(day=1)
        else:
            day = self.first - timedelta(days=7)
        return day if dates.in_range(day) else None

    @property
    def next(self) -> date | None:
        day = (self.month_last if self.month_last else self.last) + timedelta(days=1)
        return day if dates.in_range(day) else None


class TaskCalendarView(TaskListView):
    """The task list's scope and filters over a week or a month. Without any filter it
    shows the user's own tasks (assignee=me); an empty assignee shows all they see."""

    template_name = "crm/tasks/calendar.html"
    http_method_names = ["get", "head"]
    paginate_by = None
    bulk_actions = ()

    def get(self, request, *args, **kwargs):
        if not any(key not in CALENDAR_PARAMS for key in request.GET):
            params = request.GET.copy()
            params["assignee"] = "me"
            return HttpResponseRedirect(f"{request.path}?{params.urlencode()}")
        return super().get(request, *args, **kwargs)

    def get_paginate_by(self, queryset):
        return None

    def period(self) -> tuple[Period, str]:
        """The period asked for (?view=&date=), and what was wrong with the request when
        it could not be read: then the period around today is shown."""
        form = TaskCalendarForm(self.request.GET)
        valid = form.is_valid()
        view = form.cleaned_data.get("view") or CALENDAR_WEEK
        day = form.cleaned_data.get("date") or timezone.localdate()
        error = ""
        if not valid and "date" in form.errors:
            error = _("“%(value)s” is not a date the calendar can show; showing today. %(why)s") % {
                "value": self.request.GET.get("date", "")[:40],
                "why": " ".join(form.errors["date"]),
            }
        return Period.around(view, day), error

    def filter_query(self) -> QueryDict:
        params = self.request.GET.copy()
        for key in CALENDAR_PARAMS:
            params.pop(key, None)
        return params

    def link(self, view: str, day: date) -> str:
        params = self.filter_query()
        params["view"], params["date"] = view, day.isoformat()
        return f"?{params.urlencode()}"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        period, error = self.period()
        follow_ups = FollowUpFilter(
            self.filter_query(), queryset=Customer.objects.all(), request=self.request
        )
        found = selectors.calendar_days(
            self.request.user,
            period.first,
            period.last,
            tasks=self.object_list,
            customers=follow_ups.qs,
        )
        today = timezone.localdate()
        weekday_names = [
            pgettext("weekday", "Mon"),
            pgettext("weekday", "Tue"),
            pgettext("weekday", "Wed"),
            pgettext("weekday", "Thu"),
            pgettext("weekday", "Fri"),
            pgettext("weekday", "Sat"),
            pgettext("weekday", "Sun"),
        ]
        days = [
            CalendarDay(
                day=day,
                entries=entries,
                is_today=day == today,
                in_period=period.month_first is None
                or period.month_first <= day <= period.month_last,
                week_url=self.link(CALENDAR_WEEK, day),
                weekday=weekday_names[day.weekday()],
            )
            for day, entries in found.days.items()
        ]
        filters_query = self.filter_query().urlencode()
        context.update(
            period=period,
            days=days,
            weeks=[days[i : i + 7] for i in range(0, len(days), 7)],
            weekdays=weekday_names,
            # A day as the calendar names it (Django's date format): 3月5日, Mar 5.
            day_format=pgettext("calendar day", "M j"),
            date_error=error,
            truncated=found.truncated,
            filters_query=filters_query,
            list_url=f"?{filters_query}" if filters_query else "",
            week_url=self.link(CALENDAR_WEEK, period.day),
            month_url=self.link(CALENDAR_MONTH, period.day),
            today_url=self.link(period.view, today),
            previous_url=self.link(period.view, period.previous) if period.previous else "",
            next_url=self.link(period.view, period.next) if period.next else "",
            month_cell_limit=MONTH_CELL_LIMIT,
            # The list's filter form, keeping the view and the day it shows.
            filter_keep=[("view", period.view), ("date", period.day.isoformat())],
            filter_reset_url=f"{self.request.path}?view={period.view}&date={period.day.isoformat()}",
            is_empty=not any(day.entries for day in days if day.in_period),
        )
        return context

    def render_to_response(self, context, **response_kwargs):
        if FILTERS_FORM_PARAM in self.request.GET:
            return TemplateResponse(self.request, "crm/partials/filter_form.html", context)
        return super().render_to_response(context, **response_kwargs)


@dataclass(frozen=True)
class CalendarDay:
    day: date
    entries: list
    is_today: bool
    in_period: bool
    week_url: str
    weekday: str

    @property
    def is_weekend(self) -> bool:
        return self.day.weekday() >= 5

    @property
    def more(self) -> int:
        """How many entries a month cell leaves to its week (a phone lists them all)."""
        return max(0, len(self.entries) - MONTH_CELL_LIMIT)
