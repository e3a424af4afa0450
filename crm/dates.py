"""The dates the CRM accepts, and the form fields and validators that hold every date
and time a person or a program enters to them.

Why a range at all: a follow-up dated 0001-01-01 00:00 in Asia/Shanghai is year 0 in
UTC. PostgreSQL stores it, and reading it back fails ("year -1 is out of range") on
every page that shows it; on SQLite the save itself fails. Nobody sells in year 1 or
9999, so dates outside EARLIEST..LATEST get a clear message instead, in forms,
filters, report periods and services (the model fields carry the validator, so
`full_clean` checks it), and the database refuses them too (CHECK constraints).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.db.models import CheckConstraint, Q
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

EARLIEST = date(1900, 1, 1)
LATEST = date(2099, 12, 31)

# What the database constraints allow: a day more on each side than the validators, so
# a moment at the edge in any time zone passes them (the validators speak first).
DB_EARLIEST = datetime.combine(EARLIEST - timedelta(days=1), time.min, tzinfo=UTC)
DB_LATEST = datetime.combine(LATEST + timedelta(days=2), time.min, tzinfo=UTC)

OUT_OF_RANGE = _("Enter a date between %(earliest)s and %(latest)s.")


def out_of_range_message() -> str:
    return OUT_OF_RANGE % {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()}


def local_day(value: date | datetime) -> date:
    """The calendar day a person meant: a moment's day in the current time zone."""
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            try:
                value = timezone.localtime(value)
            except (OverflowError, ValueError):
                # Too close to year 1 or 9999 to convert: out of range anyway.
                return date.min if value.year < EARLIEST.year else date.max
        return value.date()
    return value


def in_range(value: date | datetime | None) -> bool:
    return value is None or EARLIEST <= local_day(value) <= LATEST


@deconstructible
class DateRangeValidator:
    """Model and form validator: the value's (local) day lies in EARLIEST..LATEST."""

    code = "date_out_of_range"

    def __call__(self, value) -> None:
        if not in_range(value):
            raise ValidationError(out_of_range_message(), code=self.code)

    def __eq__(self, other) -> bool:
        return isinstance(other, DateRangeValidator)

    def __hash__(self) -> int:
        return hash(self.code)


validate_date_range = DateRangeValidator()


def check_constraint(field: str, *, is_date: bool, name: str):
    """A CHECK constraint that keeps `field` within the range in the database."""
    if is_date:
        low, high = EARLIEST, LATEST
        condition = Q(**{f"{field}__gte": low, f"{field}__lte": high})
    else:
        low, high = DB_EARLIEST, DB_LATEST
        condition = Q(**{f"{field}__gte": DB_EARLIEST, f"{field}__lt": DB_LATEST})
    return RangeCheck(
        condition=condition | Q(**{f"{field}__isnull": True}),
        name=name,
        violation_error_message=lazy(out_of_range_message, str)(),
        field=field,
        low=low,
        high=high,
        high_inclusive=is_date,
    )


class RangeCheck(CheckConstraint):
    """The range CHECK of a date field, validated in Python by `full_clean`: Django
    checks a CheckConstraint with a query of its own (and a savepoint), once per date
    field per save; this is the same comparison on the value in hand. Migrations see a
    plain CheckConstraint (the database's check is the same)."""

    def __init__(self, *, field: str, low, high, high_inclusive: bool, **kwargs) -> None:
        super().__init__(**kwargs)
        self.field, self.low, self.high, self.high_inclusive = field, low, high, high_inclusive

    def validate(self, model, instance, exclude=None, using=DEFAULT_DB_ALIAS):
        if exclude and self.field in exclude:
            return
        value = getattr(instance, self.field, None)
        if value is None:
            return
        try:
            fits = self.low <= value and (
                value <= self.high if self.high_inclusive else value < self.high
            )
        except TypeError:  # a naive datetime, a string...: as Django would check it
            return super().validate(model, instance, exclude=exclude, using=using)
        if not fits:
            raise ValidationError(
                self.get_violation_error_message(), code=self.violation_error_code
            )

    def deconstruct(self):
        _path, args, kwargs = super().deconstruct()
        return "django.db.models.CheckConstraint", args, kwargs

    def clone(self):
        _path, args, kwargs = super().deconstruct()
        return self.__class__(
            *args,
            field=self.field,
            low=self.low,
            high=self.high,
            high_inclusive=self.high_inclusive,
            **kwargs,
        )


# --- Form fields ------------------------------------------------------------------------


class _Bounded:
    """Checks the range in to_python, before anything (a time zone conversion, a
    timedelta) can overflow on a year-1 or year-9999 value."""

    def to_python(self, value):
        result = super().to_python(value)
        if result is not None and not in_range(result):
            raise ValidationError(out_of_range_message(), code=DateRangeValidator.code)
        return result


class DateField(_Bounded, forms.DateField):
    pass


class DateTimeField(_Bounded, forms.DateTimeField):
    pass


class DateRangeField(django_filters.fields.DateRangeField):
    """django-filter's from/to pair of dates, each bounded."""

    def __init__(self, *args, **kwargs):
        # RangeField's own __init__ with bounded parts (DateRangeField's would make
        # unbounded ones).
        django_filters.fields.RangeField.__init__(self, (DateField(), DateField()), *args, **kwargs)


class DateFromToRangeFilter(django_filters.DateFromToRangeFilter):
    """A list filter "from … to …" on a date or a moment, with bounded dates."""

    field_class = DateRangeField
