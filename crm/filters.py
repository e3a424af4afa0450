"""List filters (django-filter). Choices are limited to what the user may see, and
relative values ("me", "today", "30 days") keep saved views meaningful over time."""

from __future__ import annotations

from datetime import date, datetime

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.forms.models import ModelChoiceIteratorValue
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters import fields as filter_fields

from accounts import access
from accounts.models import DataScope, Department

from . import selectors
from .dates import DateFromToRangeFilter
from .dictionary_copy import dictionary_items_by_id
from .fields import query, schema
from .models import (
    Activity,
    Contact,
    Customer,
    DictionaryItem,
    FieldType,
    PoolEvent,
    Tag,
    Task,
    TaskStatus,
)
from .people_copy import active_people
from .services.search import icontains_q, phone_terms

ME, POOL = "me", "pool"
ANY = _("Any")


# The day's bounds live with the questions that use them (crm.selectors).
end_of_today, start_of_today = selectors.end_of_today, selectors.start_of_today


def people_in_scope(request) -> list:
    """The people whose records the user sees (with department and role), loaded once per
    request: the owner filter and the page's own pickers share the list.

    Whose scope is their own records (a rep) sees only themselves: the request's user,
    already loaded with department and role, without a query."""
    people = getattr(request, "_people_in_scope", None)
    if people is None:
        user = request.user
        if not user.is_authenticated:
            people = []
        elif access.data_scope(user) != DataScope.ALL and not access.scope_department_ids(user):
            # What users_in_scope would load: the user alone, if active.
            people = [user] if user.is_active else []
        else:
            # What users_in_scope would load, from the process's copy (crm.people_copy).
            people = [person for person in active_people() if access.user_in_scope(user, person)]
        request._people_in_scope = people
    return people


def dictionary_items(request) -> dict[int, DictionaryItem]:
    """Every data-dictionary item by id (with its dictionary): the process's copy
    (crm.dictionary_copy), the same one for the whole request: the filter pickers and a
    list's level/type/source columns share it. Read it, never change it."""
    items = getattr(request, "_dictionary_items", None)
    if items is None:
        items = dictionary_items_by_id()
        request._dictionary_items = items
    return items


def owner_choices(request, *, pool: bool) -> list[tuple[str, str]]:
    choices = [(ME, _("Me"))]
    if pool:
        choices.append((POOL, _("Public pool (no owner)")))
    people = people_in_scope(request)
    choices += [(str(u.pk), u.get_full_name()) for u in people if u.pk != request.user.pk]
    return choices


def dictionary_filter(code: str, label) -> filters.ModelChoiceFilter:
    return DictionaryFilter(label=label, code=code)


class DateRangeWidget(filters.widgets.DateRangeWidget):
    def __init__(self, attrs=None):
        super().__init__(attrs={"type": "date", **(attrs or {})})


class SearchFilter(filters.CharFilter):
    """Free text over several fields (names, phones, emails), matched as /search/ does:
    case-insensitive "contains" (index-served on PostgreSQL, see crm.services.search),
    and phones in any format or by 4+ of their digits when the text looks like a phone."""

    # More related records than this match (a customer name's common word): matched as a
    # set in one OR rather than as a union of ids (see filter).
    COMMON = 1_000

    def __init__(self, *args, fields=(), phone_fields=(), **kwargs):
        self.search_fields, self.phone_fields = fields, phone_fields
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        value = " ".join((value or "").split())
        if not value:
            return qs
        # A field hidden from the user is not searched either (a match would reveal it).
        request = getattr(self.parent, "request", None)
        record_type = getattr(qs.model, "record_type", "")
        hidden = access.hidden_fields(request.user, record_type) if request else frozenset()
        condition, through = Q(), {}
        for field in self.search_fields:
            if field in hidden:
                continue
            relation, _, name = field.partition("__")
            if name:  # the contact's customer__name: matched in the customers
                related = qs.model._meta.get_field(relation).related_model
                through[relation] = through.get(relation, Q()) | icontains_q(related, name, value)
            else:
                condition |= icontains_q(qs.model, field, value)
        phones = phone_terms(value)
        if phones:
            for field in self.phone_fields:
                if field not in hidden:
                    condition |= phones.q(field)
        if not (condition or through):
            return qs.none()
        if not through:
            return qs.filter(condition)
        # Across two tables, one OR can use no index: PostgreSQL read every contact and
        # worked out the bigrams of each (a rep's 王伟: 240 ms at 200,000 contacts). As a
        # union, each part is found by its own table's indexes (a few ms). A common word
        # of the related records (上海: 10,700 customers, 56,000 of their follow-ups)
        # would have the union collect every match before the page takes 25 (a follow-up
        # list: 0.6-0.9 s). So past COMMON related matches the parts are sets in one OR,
        # and the list walks its order until the page (and the capped count) is full.
        records = qs.model._default_manager
        matches = [records.filter(condition).order_by().values("pk")] if condition else []
        common = Q()
        for relation, matched in through.items():
            related = qs.model._meta.get_field(relation).related_model._default_manager
            inside = related.filter(matched).order_by().values("pk")
            if inside[self.COMMON :].exists():  # more than COMMON: one row is read
                common |= Q(**{f"{relation}__in": inside})
            else:
                matches.append(
                    records.filter(**{f"{relation}__in": inside}).order_by().values("pk")
                )
        union = matches[0].union(*matches[1:]) if matches else None
        if not common:
            return qs.filter(pk__in=union)
        # Each part a set (hashed once, found by the part's own indexes), never a text
        # condition worked out on every row the walk reads (the bigrams of 80,000
        # follow-ups: 0.7 s).
        return qs.filter(common | Q(pk__in=union) if union is not None else common)


class OwnerFilter(filters.ChoiceFilter):
    def __init__(self, *args, path: str = "owner", **kwargs):
        self.path = path
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in ("", None):
            return qs
        if value == ME:
            return qs.filter(**{self.path: self.parent.request.user})
        if value == POOL:
            return qs.filter(**{f"{self.path}__isnull": True})
        return qs.filter(**{f"{self.path}_id": int(value)})


TEAM = "team"


def team_choices(request) -> list[tuple[str, str]]:
    """Me, everyone whose records I see ("team"), then each of them: the people filters
    that reports drill down to (a report's total covers the team, a row one person)."""
    choices = owner_choices(request, pool=False)
    return [choices[0], (TEAM, _("My team (everyone I see)")), *choices[1:]]


class PersonFilter(OwnerFilter):
    """An OwnerFilter that also takes "team": anyone in the user's data scope."""

    def filter(self, qs, value):
        if value == TEAM:
            people = access.users_in_scope(self.parent.request.user).values("pk")
            return qs.filter(**{f"{self.path}__in": people})
        return super().filter(qs, value)


class _PresetChoiceIterator(filter_fields.ModelChoiceIterator):
    def __iter__(self):
        preset = self.field.preset_choices()
        if preset is None:
            yield from super().__iter__()
            return
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        yield from preset

    def __len__(self):
        preset = self.field.preset_choices()
        return super().__len__() if preset is None else len(preset) + 1


class PresetModelChoiceField(filter_fields.ModelChoiceField):
    """A model choice whose choices come from objects already loaded for the request
    (`preset`: (instance, label) pairs, or a callable returning them, called only when
    the form renders or validates): neither rendering nor validating runs a query."""

    iterator = _PresetChoiceIterator
    preset = None

    def preset_choices(self) -> list | None:
        if callable(self.preset):
            self.preset = [
                (ModelChoiceIteratorValue(obj.pk, obj), label) for obj, label in self.preset()
            ]
        return self.preset

    def to_python(self, value):
        if value in self.empty_values:
            return None
        preset = self.preset_choices()
        if preset is None:
            return super().to_python(value)
        for option, _label in preset:
            if str(option.value) == str(value):
                return option.instance
        raise ValidationError(
            self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value}
        )


class PresetModelChoiceFilter(filters.ModelChoiceFilter):
    """A ModelChoiceFilter whose choices are `choices(request)`: (instance, label) pairs
    from what the request loads anyway (see PresetModelChoiceField)."""

    field_class = PresetModelChoiceField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("empty_label", ANY)
        super().__init__(*args, **kwargs)

    def choices(self, request) -> list:
        raise NotImplementedError

    @property
    def field(self):
        if not hasattr(self, "_field"):
            field = super().field
            request = self.parent.request if self.parent is not None else None
            if request is not None:
                field.preset = lambda: self.choices(request)
        return self._field


def tag_list(request) -> list[Tag]:
    """All tags by name, loaded once per request (filter pickers and the page share it)."""
    tags = getattr(request, "_tag_list", None)
    if tags is None:
        tags = request._tag_list = list(Tag.objects.order_by("name"))
    return tags


class DictionaryFilter(PresetModelChoiceFilter):
    """An item of the data dictionary `code`, offered from the request's one load of all
    dictionary items (see dictionary_items)."""

    def __init__(self, *args, code: str, **kwargs):
        self.code = code
        kwargs.setdefault("queryset", DictionaryItem.objects.of(code).order_by("order", "id"))
        super().__init__(*args, **kwargs)

    def choices(self, request) -> list:
        items = dictionary_items(request).values()
        return [(item, str(item)) for item in items if item.dictionary.code == self.code]


class TagFilter(PresetModelChoiceFilter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("queryset", Tag.objects.all())
        kwargs.setdefault("field_name", "tags")
        super().__init__(*args, **kwargs)

    def choices(self, request) -> list:
        return [(tag, tag.name) for tag in tag_list(request)]


class DepartmentFilter(PresetModelChoiceFilter):
    """Records owned by members of a department or any department below it. Offers the
    departments of the user's data scope, by their path (销售部 / 销售一部)."""

    def __init__(self, *args, path: str = "owner", **kwargs):
        self.path = path
        kwargs.setdefault("queryset", Department.objects.all())
        super().__init__(*args, **kwargs)

    def choices(self, request) -> list:
        departments = list(Department.objects.tree_map().values())
        user = request.user
        if access.data_scope(user) != DataScope.ALL:
            ids = access.scope_department_ids(user)
            departments = [d for d in departments if d.pk in ids]
        return sorted(((d, d.path_display) for d in departments), key=lambda pair: pair[1])

    def filter(self, qs, value):
        if not value:
            return qs
        ids = Department.objects.subtree_ids(value.pk)
        return qs.filter(**{f"{self.path}__department_id__in": ids})


def _day(value) -> date | None:
    if isinstance(value, datetime):
        return timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return value


def describe_value(field: forms.Field, value) -> str:
    """A filter's cleaned value as its form offers it: a choice by its label, a record by
    its name, a range as "from – to", yes/no in words."""
    if isinstance(value, slice):
        start, stop = _day(value.start), _day(value.stop)
        if start is None and stop is None:
            return ""
        if isinstance(start, date) or isinstance(stop, date):
            first = f"{start:%Y-%m-%d}" if start else ""
            if stop is None:
                return _("from %(day)s") % {"day": first}
            same_year = start is not None and start.year == stop.year
            last = f"{stop:%m-%d}" if same_year else f"{stop:%Y-%m-%d}"
            return f"{first} – {last}" if start else _("until %(day)s") % {"day": last}
        if start is None:
            return f"≤ {stop}"
        return f"≥ {start}" if stop is None else f"{start} – {stop}"
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    choices = getattr(field, "choices", None)
    if choices is not None:
        labels = {}
        for key, label in choices:
            if isinstance(label, list | tuple):  # an option group
                labels.update({str(k): lbl for k, lbl in label})
            else:
                labels[str(getattr(key, "value", key))] = label
        values = value if isinstance(value, list | tuple) else [value]
        named = [str(labels.get(str(getattr(v, "pk", v)), v)) for v in values]
        return "、".join(named)
    if isinstance(value, str):
        return f"“{value}”"
    return str(value)


class RecordFilterSet(filters.FilterSet):
    """Filters of a record list; a filter by department is offered only to people whose
    data scope spans departments (with scope "own" it could only ever narrow nothing)."""

    # Filters on a field a role's field permissions may hide: filter name -> field.
    field_filters: dict[str, str] = {}

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        user = getattr(request, "user", None)
        if user is not None and access.data_scope(user) == DataScope.OWN:
            for name, filter_ in list(self.filters.items()):
                if isinstance(filter_, DepartmentFilter):
                    del self.filters[name]
        record_type = getattr(self._meta.model, "record_type", None)
        if user is not None and record_type:
            self.add_field_filters(request, record_type)

    def active_filters(self) -> list[tuple[str, str]]:
        """The filters applied, in words: [(label, value as people read it)], e.g.
        [("Stage", "Quotation"), ("Entered a stage", "2026-12-01 – 12-31")]. Only values
        that passed validation; the order is the filter panel's."""
        if not self.is_bound or self.form.data is None:
            return []
        self.form.is_valid()
        data = getattr(self.form, "cleaned_data", {})
        shown = []
        for name in self.filters:
            value = data.get(name)
            field = self.form.fields.get(name)
            if field is None or value in (None, "", [], ()):
                continue
            text = describe_value(field, value)
            if text:
                shown.append((str(field.label or name), text))
        return shown

    def add_field_filters(self, request, record_type: str) -> None:
        """Drop filters on fields hidden from the user; add one per filterable custom
        field the user may see (DESIGN rule 2: the filter panel is built here once)."""
        hidden = access.hidden_fields(request.user, record_type)
        for name, field in self.field_filters.items():
            if field in hidden:
                self.filters.pop(name, None)
        for spec in schema.custom_specs(request.user, record_type):
            cf = spec.custom
            if not cf.filterable:
                continue
            items = [
                item
                for item in dictionary_items(request).values()
                if item.dictionary_id == cf.dictionary_id
            ]
            users = people_in_scope(request) if cf.field_type == FieldType.USER else ()
            custom_filter = query.build_filter(cf, items=items, users=users)
            custom_filter.parent = self
            custom_filter.model = self._meta.model
            self.filters[cf.name] = custom_filter


class PoolEventFilters(filters.FilterSet):
    """Customers claimed from or returned to the public pool (the activity report's
    drill-down): `pool_event` picks the action; the date range, the person ("me", "team"
    or one person) and the department narrow the same events and alone filter nothing."""

    pool_event = filters.ChoiceFilter(
        label=_("Public pool"), choices=PoolEvent.Action.choices, method="filter_pool_event"
    )
    pool_event_date = DateFromToRangeFilter(
        label=_("Claimed or returned"), method="with_pool_event", widget=DateRangeWidget
    )
    pool_event_user = PersonFilter(
        label=_("Claimed or returned by"), choices=(), method="with_pool_event"
    )
    pool_event_department = DepartmentFilter(
        label=_("Claimed or returned by members of"), method="with_pool_event"
    )

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["pool_event_user"].extra["choices"] = team_choices(request)

    def with_pool_event(self, qs, name, value):
        return qs  # applied by filter_pool_event

    def filter_pool_event(self, qs, name, value):
        data = self.form.cleaned_data
        events = PoolEvent.objects.filter(customer=OuterRef("pk"), action=value)
        span = data.get("pool_event_date")
        if span is not None and span.start is not None:
            events = events.filter(created_at__gte=span.start)
        if span is not None and span.stop is not None:
            events = events.filter(created_at__lte=span.stop)
        person = data.get("pool_event_user")
        if person == ME:
            events = events.filter(user=self.request.user)
        elif person == TEAM:
            events = events.filter(user__in=access.users_in_scope(self.request.user).values("pk"))
        elif person:
            events = events.filter(user_id=int(person))
        department = data.get("pool_event_department")
        if department is not None:
            ids = Department.objects.subtree_ids(department.pk)
            events = events.filter(user__department_id__in=ids)
        return qs.filter(Exists(events))


class CustomerFilter(PoolEventFilters, RecordFilterSet):
    q = SearchFilter(
        label=_("Search"),
        fields=("name", "email"),
        phone_fields=("phone",),
        widget=forms.TextInput(attrs={"placeholder": _("Name, phone or email")}),
    )
    owner = OwnerFilter(label=_("Owner"), choices=())
    department = DepartmentFilter(label=_("Department"))
    type = dictionary_filter("customer_type", _("Type"))
    source = dictionary_filter("customer_source", _("Source"))
    level = dictionary_filter("customer_level", _("Level"))
    industry = dictionary_filter("industry", _("Industry"))
    tag = TagFilter(label=_("Tag"))
    created = DateFromToRangeFilter(
        label=_("Created"), field_name="created_at", widget=DateRangeWidget
    )
    last_activity = DateFromToRangeFilter(
        label=_("Last activity"), field_name="last_activity_at", widget=DateRangeWidget
    )
    follow_up = filters.ChoiceFilter(
        label=_("Follow-up"),
        choices=[
            (selectors.FOLLOW_UP_DUE, _("Due by end of today")),
            (selectors.FOLLOW_UP_OVERDUE, _("Overdue")),
            (selectors.FOLLOW_UP_WEEK, _("In the next 7 days")),
            (selectors.FOLLOW_UP_NONE, _("None planned")),
        ],
        method="filter_follow_up",
    )
    field_filters = {
        "type": "type",
        "source": "source",
        "level": "level",
        "industry": "industry",
        "tag": "tags",
    }
    stale = filters.NumberFilter(
        label=_("No follow-up for (days)"),
        method="filter_stale",
        min_value=1,
        # A century: past it "days ago" is before any date the CRM keeps (crm.dates).
        max_value=36_500,
    )
    # Customers whose source or level is empty (a report's "not given" row).
    missing = filters.MultipleChoiceFilter(
        label=_("Not filled in"),
        choices=[("source", _("Source")), ("level", _("Level"))],
        method="filter_missing",
    )

    class Meta:
        model = Customer
        fields: list[str] = []

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["owner"].extra["choices"] = owner_choices(request, pool=True)

    def filter_follow_up(self, qs, name, value):
        return qs.filter(selectors.follow_up_q(value))

    def filter_stale(self, qs, name, value):
        return qs.filter(selectors.stale_q(value))

    def filter_missing(self, qs, name, value):
        hidden = access.hidden_fields(self.request.user, "customer") if self.request else ()
        for field in value or ():
            if field in ("source", "level") and field not in hidden:
                qs = qs.filter(**{f"{field}__isnull": True})
        return qs


class ContactFilter(RecordFilterSet):
    q = SearchFilter(
        label=_("Search"),
        fields=("name", "email", "customer__name", "wechat"),
        phone_fields=("mobile", "phone"),
        widget=forms.TextInput(attrs={"placeholder": _("Name, phone, email or customer")}),
    )
    owner = OwnerFilter(label=_("Owner"), choices=(), path="customer__owner")
    department = DepartmentFilter(label=_("Department"), path="customer__owner")
    primary = filters.BooleanFilter(label=_("Primary contact"), field_name="is_primary")
    do_not_contact = filters.BooleanFilter(label=_("Do not contact"))
    field_filters = {"primary": "is_primary", "do_not_contact": "do_not_contact"}
    created = DateFromToRangeFilter(
        label=_("Created"), field_name="created_at", widget=DateRangeWidget
    )

    class Meta:
        model = Contact
        fields: list[str] = []

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["owner"].extra["choices"] = owner_choices(request, pool=True)


class TaskFilter(RecordFilterSet):
    q = SearchFilter(
        label=_("Search"),
        fields=("title", "customer__name"),
        widget=forms.TextInput(attrs={"placeholder": _("Title or customer")}),
    )
    assignee = PersonFilter(label=_("Assignee"), choices=(), path="assignee")
    department = DepartmentFilter(label=_("Department"), path="assignee")
    status = filters.ChoiceFilter(label=_("Status"), choices=TaskStatus.choices)
    due_on = DateFromToRangeFilter(
        label=_("Due between"), field_name="due_at", widget=DateRangeWidget
    )
    completed = DateFromToRangeFilter(
        label=_("Completed"), field_name="completed_at", widget=DateRangeWidget
    )
    due = filters.ChoiceFilter(
        label=_("Due"),
        choices=[
            (selectors.TASK_DUE_TODAY, _("Today")),
            (selectors.TASK_OVERDUE, _("Overdue")),
            (selectors.TASK_UPCOMING, _("Upcoming")),
            (selectors.TASK_NO_DUE, _("No due time")),
        ],
        method="filter_due",
    )

    class Meta:
        model = Task
        fields: list[str] = []

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["assignee"].extra["choices"] = team_choices(request)

    def filter_due(self, qs, name, value):
        return qs.filter(selectors.task_due_q(value))


class ActivityFilter(RecordFilterSet):
    """The activities list (/activities/): who logged them (a person, "me" or the team),
    their department, the kind, when they happened and the customer."""

    q = SearchFilter(
        label=_("Search"),
        fields=("customer__name", "content"),
        widget=forms.TextInput(attrs={"placeholder": _("Customer or content")}),
    )
    author = PersonFilter(label=_("By"), choices=(), path="author")
    department = DepartmentFilter(label=_("Department"), path="author")
    kind = dictionary_filter("activity_kind", _("Kind"))
    occurred = DateFromToRangeFilter(
        label=_("When"), field_name="occurred_at", widget=DateRangeWidget
    )

    class Meta:
        model = Activity
        fields: list[str] = []

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["author"].extra["choices"] = team_choices(request)
