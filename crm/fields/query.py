"""Custom fields in querysets: list filters, sorting and the values a page shows.

On PostgreSQL a filter or sort is compiled to the same expression as the field's index
(crm.fields.indexes): `custom ->> 'key'` for text, choices and dates, a guarded numeric
cast for numbers (indexes.numeric_sql), `custom @> {"key": [code]}` for multiple
choice; `custom -> 'key' = '"x"'` (what `custom__key="x"` compiles to) would read every
row (FACTS.md). SQLite uses Django's JSON path lookups.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Any

from django import forms
from django.db import connection
from django.db.models import DecimalField, Func, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters import filters
from django_filters import widgets as filter_widgets

from ..dates import DateFromToRangeFilter
from ..models import CustomField, DictionaryItem, FieldType
from ..money import money_html
from ..params import parse_id
from . import types
from .indexes import NUMERIC_TYPES, numeric_sql

TEXT_TYPES = frozenset(
    {FieldType.TEXT, FieldType.LONG_TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL}
)
RANGE_TYPES = NUMERIC_TYPES | {FieldType.DATE, FieldType.DATETIME}


class Numeric(Func):
    """The number in a text on PostgreSQL, NULL when the text holds none: the same
    expression as the field's index (indexes.numeric_sql); CAST(expr AS decimal)
    elsewhere."""

    output_field = DecimalField()

    def as_postgresql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # The text expression appears twice: its parameters (the key) twice too.
        return numeric_sql(sql), (*params, *params)

    def as_sql(self, compiler, connection, **extra):
        return compiler.compile(Cast(self.source_expressions[0], DecimalField()))


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def value_expr(cf: CustomField):
    """What the field's filter and sort compare (matching its index on PostgreSQL)."""
    text = KT(f"custom__{cf.key}")
    return Numeric(text) if cf.field_type in NUMERIC_TYPES else text


def alias_name(cf: CustomField) -> str:
    return f"_cf_{cf.key}"


def filter_exact(qs: QuerySet, cf: CustomField, value: Any) -> QuerySet:
    """Records whose value equals `value` (a stored-form value)."""
    if _postgres():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return qs.alias(**{alias_name(cf): KT(f"custom__{cf.key}")}).filter(
            **{alias_name(cf): text}
        )
    return qs.filter(**{f"custom__{cf.key}": value})


def filter_contains_item(qs: QuerySet, cf: CustomField, code: str) -> QuerySet:
    """Multiple choice: records whose list holds `code`."""
    if _postgres():
        return qs.filter(custom__contains={cf.key: [code]})
    return qs.filter(**{f"custom__{cf.key}__icontains": f'"{code}"'})


def filter_range(qs: QuerySet, cf: CustomField, low: Any, high: Any) -> QuerySet:
    """Numbers, dates and datetimes between low and high (either may be None)."""
    if low is None and high is None:
        return qs
    name = alias_name(cf)
    if cf.field_type in NUMERIC_TYPES:
        qs = qs.alias(**{name: Numeric(KT(f"custom__{cf.key}"))})
        low = Decimal(low) if low is not None else None
        high = Decimal(high) if high is not None else None
    else:
        # ISO text sorts as the dates do: compare strings (index-served on PostgreSQL;
        # SQLite compares through its JSON path lookup).
        if _postgres():
            qs = qs.alias(**{name: KT(f"custom__{cf.key}")})
        else:
            name = f"custom__{cf.key}"
        if cf.field_type == FieldType.DATETIME:
            low = (
                types.to_storage(cf, timezone.make_aware(datetime.combine(low, time.min)))
                if low
                else None
            )
            high = (
                types.to_storage(cf, timezone.make_aware(datetime.combine(high, time.max)))
                if high
                else None
            )
        else:
            low = low.isoformat() if low else None
            high = high.isoformat() if high else None
    if low is not None:
        qs = qs.filter(**{f"{name}__gte": low})
    if high is not None:
        qs = qs.filter(**{f"{name}__lte": high})
    return qs


def order_by_field(cf: CustomField, descending: bool):
    """Empty values last in both directions, the orders of the field's two indexes
    (crm.fields.indexes), so a sorted page reads one of them."""
    expr = value_expr(cf)
    return expr.desc(nulls_last=True) if descending else expr.asc(nulls_last=True)


# --- django-filter filters -------------------------------------------------------------


class CustomFieldFilter(filters.Filter):
    """A list filter on one custom field; the form field fits the type."""

    def __init__(self, *args, custom: CustomField, field_class=forms.CharField, **kwargs):
        self.custom = custom
        super().__init__(*args, **kwargs)
        self.field_class = field_class

    def filter(self, qs, value):
        cf = self.custom
        if value in (None, "", [], ()):
            return qs
        if cf.field_type in RANGE_TYPES:
            return filter_range(qs, cf, value.start, value.stop)
        if cf.field_type == FieldType.MULTI_CHOICE:
            return filter_contains_item(qs, cf, value)
        if cf.field_type == FieldType.BOOLEAN:
            return filter_exact(qs, cf, value == "true")
        if cf.field_type == FieldType.USER:
            user_id = parse_id(value)
            return filter_exact(qs, cf, value if user_id is None else user_id)
        if cf.field_type in TEXT_TYPES:
            try:
                value = types.clean_value(cf, value, required=False)
            except forms.ValidationError:
                return qs.none()
        return filter_exact(qs, cf, value)


def build_filter(
    cf: CustomField, *, items: list[DictionaryItem] | None = None, users=()
) -> filters.Filter:
    label = cf.display_label
    name = cf.name
    kind = cf.field_type
    if kind in NUMERIC_TYPES:
        return CustomFieldFilter(
            field_name=name,
            label=label,
            custom=cf,
            field_class=filters.RangeFilter.field_class,
            widget=filter_widgets.RangeWidget(attrs={"inputmode": "decimal"}),
        )
    if kind in (FieldType.DATE, FieldType.DATETIME):
        from ..filters import DateRangeWidget

        return CustomFieldFilter(
            field_name=name,
            label=label,
            custom=cf,
            field_class=DateFromToRangeFilter.field_class,
            widget=DateRangeWidget,
        )
    if kind in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        choices = [(item.code, str(item)) for item in (items or [])]
        return CustomFieldFilter(
            field_name=name,
            label=label,
            custom=cf,
            field_class=forms.ChoiceField,
            choices=[("", _("Any")), *choices],
        )
    if kind == FieldType.BOOLEAN:
        return CustomFieldFilter(
            field_name=name,
            label=label,
            custom=cf,
            field_class=forms.ChoiceField,
            choices=[("", _("Any")), ("true", _("Yes")), ("false", _("No"))],
        )
    if kind == FieldType.USER:
        return CustomFieldFilter(
            field_name=name,
            label=label,
            custom=cf,
            field_class=forms.ChoiceField,
            choices=[("", _("Any"))]
            + [(str(u.pk), u.get_full_name() or u.get_username()) for u in users],
        )
    return CustomFieldFilter(field_name=name, label=label, custom=cf, field_class=forms.CharField)


def display_rows(rows, specs, *, items_by_code, users) -> None:
    """Set `row.custom_cells` to the display text of each custom column of `specs`; a
    money column shows the compact amount with the exact one as its title."""
    for row in rows:
        custom = row.custom or {}
        row.custom_cells = [
            _list_cell(spec.custom, custom.get(spec.custom.key), items_by_code, users)
            for spec in specs
        ]


def _list_cell(cf, stored, items, users):
    if cf.field_type == FieldType.MONEY and stored not in (None, ""):
        return money_html(stored)
    return types.display_value(cf, stored, items=items, users=users)
