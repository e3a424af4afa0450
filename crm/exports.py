"""Record list exports (CSV and Excel): which columns a user gets, and how the rows
become a file. Customers, contacts, activities and tasks export, and every record type
whose spec (crm.records.RecordTypeSpec) names an `ExportSpec`: pipelines' leads and
deals. The reports' exports are written here too (`write_sheets`: several titled tables
in one file), so that every export keeps formulas inert the same way.

A file is written as its rows come, into memory for an export in the request
(`write`) or into a file for a background one (`write_file`, with progress): the .xlsx
by crm.xlsx, a streaming writer about 13 times faster than openpyxl's write-only mode.
Past settings.CRM_EXPORT_BACKGROUND_ROWS a list's export is handed to the background
exporter a higher app registers (`register_background_exporter`; imports).

`columns(user, record_type)` is the export's column builder, where field permissions are
applied for exports (DESIGN rule 2): the record type's standard columns less the fields
the user's role hides, then every active custom field the user may see, in the admin's
order. The rows come from the views (crm.views.exports.RecordExportView): the list's
filters and sort over `exportable_by(user)`, read in chunks so the number of queries
does not grow with rows.

Cells are text as the pages show it (labels in the user's language, phones formatted,
dates ISO), except that Excel gets numbers and dates as numbers and dates so they sort
and sum; phones and other digit strings stay text so Excel does not turn them into
numbers. A text that Excel would run as a formula is kept inert (in a CSV behind an
apostrophe, in Excel as a text cell), and a sheet's name is one Excel accepts.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property
from itertools import islice
from typing import Any, BinaryIO

import phonenumbers
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from accounts import access
from accounts.models import Department, User
from accounts.phones import format_phone

from . import xlsx
from .fields import schema, types
from .models import Activity, Contact, Customer, DictionaryItem, FieldType, Task

# An export written in the request holds at most this many rows (bigger lists go to the
# background exporter, when one is registered). The rows past it are left out and the
# file's name says so.
MAX_ROWS = 50_000
# Rows read per query (and per tags prefetch): memory stays flat, queries grow by one per
# chunk, not per row.
CHUNK_SIZE = 2_000

FORMATS = {
    "csv": ("csv", "text/csv; charset=utf-8"),
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}

LIST_SEPARATOR = "、"  # as types.display_value joins multiple choices
DATETIME_TEXT = "%Y-%m-%d %H:%M"
EXCEL_DATE = "yyyy-mm-dd"
EXCEL_DATETIME = "yyyy-mm-dd hh:mm"
EXCEL_TEXT = "@"
# Excel keeps 15 significant digits: a longer whole number is written as text.
EXCEL_MAX_INTEGER = 10**15


@dataclass(frozen=True)
class Column:
    """One column of an export. `value(row)` is the cell's text (CSV, and Excel unless
    `typed` is set); `typed(row)` gives Excel a number, date or datetime (or None)."""

    name: str  # the field's name ("phone", "cf_revenue") or a derived column's
    label: str
    value: Callable[[Any], str]
    typed: Callable[[Any], Any] | None = None
    number_format: str | None = None  # Excel's format for the typed value
    text: bool = False  # Excel: format the cells as text (phones, codes, digit strings)
    width: int = 14
    # Other fields the cells give away (a weighted amount, the amount): the column is
    # left out when the role hides any of them, as when it hides `name`.
    reveals: tuple[str, ...] = ()


class Lookups:
    """What cells refer to, each loaded at most once per export (one query, however many
    rows): dictionary items, departments, people."""

    def __init__(self, items: dict[int, DictionaryItem] | None = None):
        if items is not None:
            self.__dict__["items"] = items

    @cached_property
    def items(self) -> dict[int, DictionaryItem]:
        return {item.pk: item for item in DictionaryItem.objects.order_by("order", "id")}

    @cached_property
    def item_texts(self) -> dict[int, str]:
        """Each item's label in the current language, worked out once per export."""
        return {pk: str(item) for pk, item in self.items.items()}

    @cached_property
    def items_by_code(self) -> dict[tuple[int, str], DictionaryItem]:
        return {(item.dictionary_id, item.code): item for item in self.items.values()}

    @cached_property
    def departments(self) -> dict[int, Department]:
        return Department.objects.tree_map()

    @cached_property
    def department_texts(self) -> dict[int, str]:
        """Each department's path in the tree ("销售部 / 销售一部"), worked out once."""
        return {pk: node.path_display for pk, node in self.departments.items()}

    @cached_property
    def users(self) -> dict[int, User]:
        # For custom fields of type "user": everyone, former staff too (a record may
        # still name them); one query, only when such a column is exported.
        return {person.pk: person for person in User.objects.all()}


# --- cell helpers ----------------------------------------------------------------------


def _local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return timezone.localtime(value) if timezone.is_aware(value) else value


def _datetime_text(value: datetime | None) -> str:
    value = _local(value)
    return value.strftime(DATETIME_TEXT) if value else ""


def _datetime_cell(value: datetime | None) -> datetime | None:
    """Excel has no time zones: the local time the pages show (to the minute, as the CSV
    has it), without the zone."""
    value = _local(value)
    return value.replace(tzinfo=None, second=0, microsecond=0) if value else None


def _yes_no(value: bool) -> str:
    return _("Yes") if value else _("No")


def _label(model, name: str) -> str:
    return str(capfirst(model._meta.get_field(name).verbose_name))


def _owner_text(owner) -> str:
    return owner.get_full_name() if owner is not None else _("Public pool")


def _number(stored: Any) -> int | Decimal | str | None:
    """A stored number for Excel: int or Decimal; text when Excel would round it."""
    if stored is None or stored == "" or isinstance(stored, bool):
        return None
    try:
        number = Decimal(str(stored))
    except InvalidOperation:
        return str(stored)
    if not number.is_finite():
        return str(stored)
    if number == number.to_integral_value() and abs(number) < EXCEL_MAX_INTEGER:
        return int(number)
    if abs(number) >= EXCEL_MAX_INTEGER or len(number.as_tuple().digits) > 15:
        return str(stored)
    return number


# --- standard columns -----------------------------------------------------------------
# What a record type's column builder (its spec's ExportSpec.columns) is made of. Each
# maker names the column after the field, so a field permission that hides the field
# leaves the column out.


def column_label(model, name: str) -> str:
    """The field's name as the pages show it: its verbose name, capitalised."""
    return _label(model, name)


def _follow(row, path: str):
    """The object at `path` ("customer__owner") from `row`; None when a step is empty."""
    target = row
    for step in path.split("__"):
        target = getattr(target, step)
        if target is None:
            return None
    return target


def text_column(model, name: str, **kwargs) -> Column:
    """The field's text as stored (kwargs as Column's: width, text...)."""
    return Column(name, _label(model, name), lambda row: getattr(row, name), **kwargs)


def choice_column(model, name: str, **kwargs) -> Column:
    """A field with choices, as its label (a status: "Won")."""
    return Column(
        name, _label(model, name), lambda row: getattr(row, f"get_{name}_display")(), **kwargs
    )


def related_column(model, name: str, *, text=str, width: int = 20) -> Column:
    """A related record (read with the row: select_related) by `text(record)`, or empty."""

    def value(row) -> str:
        related = getattr(row, name)
        return text(related) if related is not None else ""

    return Column(name, _label(model, name), value, width=width)


def item_column(model, name: str, lookups: Lookups) -> Column:
    """A data-dictionary field, as its item's label (items from `lookups`, not a join)."""
    attname = f"{name}_id"

    def value(row) -> str:
        item_id = getattr(row, attname)
        return "" if item_id is None else lookups.item_texts.get(item_id, "")

    return Column(name, _label(model, name), value)


# The home region whose stored numbers are formatted without parsing them again: checked
# against format_phone on every number that can be stored (up to 11 digits).
FAST_PHONE_REGION, FAST_PHONE_DIGITS = "CN", 11


def _phone_formatter() -> Callable[[str], str]:
    """accounts.phones.format_phone, faster on Chinese numbers (most of them): a stored
    E.164 number "+86<digits>" is that number already, so it is formatted without being
    parsed again (parsing is half the cost)."""
    if settings.PHONE_DEFAULT_REGION != FAST_PHONE_REGION:
        return format_phone
    code = phonenumbers.country_code_for_region(FAST_PHONE_REGION)
    prefix, national = f"+{code}", phonenumbers.PhoneNumberFormat.NATIONAL

    def text(value: str) -> str:
        digits = value[len(prefix) :]
        if (
            value.startswith(prefix)
            and digits.isdigit()
            and len(digits) <= FAST_PHONE_DIGITS
            and not digits.startswith("0")
        ):
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(digits))
            return phonenumbers.format_number(number, national)
        return format_phone(value)

    return text


def phone_column(model, name: str) -> Column:
    """A stored E.164 number as people read it; a text cell in Excel."""
    formatted = _phone_formatter()
    return Column(
        name,
        _label(model, name),
        lambda row: formatted(getattr(row, name) or ""),
        text=True,
        width=18,
    )


def flag_column(model, name: str) -> Column:
    return Column(name, _label(model, name), lambda row: _yes_no(getattr(row, name)))


def date_column(model, name: str) -> Column:
    """A date: ISO text, an Excel date."""

    def text(row) -> str:
        value = getattr(row, name)
        return value.isoformat() if value else ""

    return Column(
        name,
        _label(model, name),
        text,
        typed=lambda row: getattr(row, name),
        number_format=EXCEL_DATE,
        width=12,
    )


def moment_column(model, name: str) -> Column:
    """A date and time, local, to the minute: text, an Excel datetime."""
    # The export's time zone, looked up once rather than per cell.
    zone = timezone.get_current_timezone()

    def local(row) -> datetime | None:
        value = getattr(row, name)
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(zone)

    def text(row) -> str:
        value = local(row)
        return value.strftime(DATETIME_TEXT) if value else ""

    def typed(row) -> datetime | None:
        value = local(row)
        return value.replace(tzinfo=None, second=0, microsecond=0) if value else None

    return Column(
        name,
        _label(model, name),
        text,
        typed=typed,
        number_format=EXCEL_DATETIME,
        width=17,
    )


def number_column(model, name: str, *, number_format: str = "0") -> Column:
    """A number field: its digits as text (0 too), an Excel number."""

    def text(row) -> str:
        value = getattr(row, name)
        return "" if value is None else str(value)

    return Column(
        name,
        _label(model, name),
        text,
        typed=lambda row: _number(getattr(row, name)),
        number_format=number_format,
    )


def amount_column(
    name: str, label: str, value: Callable[[Any], Any], *, reveals: tuple[str, ...] = ()
) -> Column:
    """Money: the plain number as text ("356000.00", which reads back in Excel and in an
    import), an Excel number formatted #,##0.00."""

    def text(row) -> str:
        amount = value(row)
        return "" if amount is None else str(amount)

    return Column(
        name,
        label,
        text,
        typed=lambda row: _number(value(row)),
        number_format=NUMBER_FORMATS[FieldType.MONEY],
        reveals=reveals,
    )


def _person(row, path: str, lookups: Lookups | None):
    """The person at `path` ("owner", "customer__owner"): from `lookups` by id when
    given (no join per row: everyone is loaded once), else read with the row."""
    if lookups is None:
        return _follow(row, path)
    *steps, field = path.split("__")
    target = _follow(row, "__".join(steps)) if steps else row
    person_id = getattr(target, f"{field}_id") if target is not None else None
    return lookups.users.get(person_id) if person_id is not None else None


def owner_column(
    model, path: str = "owner", *, empty: str | None = None, lookups: Lookups | None = None
) -> Column:
    """The person at `path` by full name; `empty` when there is none (by default
    "Public pool"). Named "owner": hiding fields never hides the owner. With `lookups`
    the people come from there (leave the person out of select_related), else they are
    read with the row."""
    field = path.split("__")[-1]
    target = model
    for step in path.split("__")[:-1]:
        target = target._meta.get_field(step).related_model

    def value(row) -> str:
        owner = _person(row, path, lookups)
        if owner is None and empty is not None:
            return str(empty)
        return _owner_text(owner)

    return Column("owner", _label(target, field), value)


def department_column(lookups: Lookups, path: str = "owner") -> Column:
    """The department (its path in the tree) of the person at `path` (from `lookups`)."""

    def value(row) -> str:
        owner = _person(row, path, lookups)
        if owner is None or owner.department_id is None:
            return ""
        return lookups.department_texts.get(owner.department_id, "")

    return Column("department", _("Department"), value, width=20)


def customer_columns(lookups: Lookups) -> list[Column]:
    def tags(row) -> str:
        loaded = getattr(row, "export_tags", None)  # attach_tags
        return LIST_SEPARATOR.join(
            loaded if loaded is not None else (tag.name for tag in row.tags.order_by("name"))
        )

    return [
        text_column(Customer, "name", width=30),
        item_column(Customer, "type", lookups),
        item_column(Customer, "level", lookups),
        item_column(Customer, "source", lookups),
        item_column(Customer, "industry", lookups),
        owner_column(Customer, lookups=lookups),
        department_column(lookups),
        phone_column(Customer, "phone"),
        text_column(Customer, "email", width=24),
        text_column(Customer, "address", width=30),
        text_column(Customer, "website", width=24),
        Column("tags", _label(Customer, "tags"), tags, width=20),
        moment_column(Customer, "created_at"),
        moment_column(Customer, "last_activity_at"),
        moment_column(Customer, "next_follow_up_at"),
    ]


def contact_columns(lookups: Lookups) -> list[Column]:
    owner = owner_column(Contact, "customer__owner", lookups=lookups)
    return [
        text_column(Contact, "name", width=16),
        Column("customer", _label(Contact, "customer"), lambda row: row.customer.name, width=30),
        text_column(Contact, "title"),
        phone_column(Contact, "mobile"),
        phone_column(Contact, "phone"),
        text_column(Contact, "email", width=24),
        text_column(Contact, "wechat", text=True, width=18),
        date_column(Contact, "birthday"),
        flag_column(Contact, "is_primary"),
        flag_column(Contact, "do_not_contact"),
        owner,
        moment_column(Contact, "created_at"),
    ]


def activity_columns(lookups: Lookups) -> list[Column]:
    """A follow-up: when, its kind, whom it was about, who logged it, what was said."""
    return [
        moment_column(Activity, "occurred_at"),
        item_column(Activity, "kind", lookups),
        related_column(Activity, "customer", text=_name, width=30),
        related_column(Activity, "contact", text=_name, width=16),
        # Named after its field (not "owner"): who logged a follow-up is no owner.
        _person_column(Activity, "author", lookups),
        department_column(lookups, "author"),
        text_column(Activity, "content", width=50),
        moment_column(Activity, "next_follow_up_at"),
    ]


def task_columns(lookups: Lookups) -> list[Column]:
    """A task: what, by when, whose, its state, for which customer."""
    return [
        text_column(Task, "title", width=30),
        choice_column(Task, "status"),
        moment_column(Task, "due_at"),
        _person_column(Task, "assignee", lookups),
        department_column(lookups, "assignee"),
        related_column(Task, "customer", text=_name, width=30),
        text_column(Task, "notes", width=40),
        moment_column(Task, "completed_at"),
        _person_column(Task, "created_by", lookups),
        moment_column(Task, "created_at"),
    ]


def _name(record) -> str:
    return record.name


def _person_column(model, name: str, lookups: Lookups) -> Column:
    """A person field (by full name, from `lookups`: no join), named after the field."""

    def value(row) -> str:
        person = _person(row, name, lookups)
        return person.get_full_name() if person is not None else ""

    return Column(name, _label(model, name), value, width=16)


# The record types with a list export: registered from their RecordTypeSpec (crm.records).


@dataclass(frozen=True)
class ExportSpec:
    """A record type's list export: its standard columns (`columns(lookups)`; field
    permissions then take out what a role hides, and the custom fields the user may see
    follow), and what to read along with each row so that the number of queries does
    not grow with the rows."""

    columns: Callable[[Lookups], list[Column]]
    select_related: tuple[str, ...] = ()
    prefetch_related: tuple[Any, ...] = ()  # lookups or Prefetch objects
    # Fills in what the columns read on a chunk of rows at once (`attach(rows)`, a query
    # per chunk): lighter than a prefetch when only a name or two is needed.
    attach: Callable[[list], None] | None = None
    # The list (a RecordListView, as a dotted path: imported only when needed) whose
    # filters, defaults and sort the export follows, also outside a request (a
    # background export: crm.views.exports.export_queryset).
    list_view: str = ""


_exports: dict[str, ExportSpec] = {}


def register_columns(record_type: str, spec: ExportSpec) -> None:
    _exports[record_type] = spec


def exportable_types() -> list[str]:
    return list(_exports)


def export_spec(record_type: str) -> ExportSpec:
    return _exports[record_type]


# A list export of more rows than settings.CRM_EXPORT_BACKGROUND_ROWS is handed to the
# background exporter a higher app registers (imports: a job written by a worker):
# `exporter(request, record_type=, fmt=, query=, title=)` answers the request (a redirect
# to the job's page). Without one, every export is written in the request.
_background: list[Callable[..., Any]] = []


def register_background_exporter(exporter: Callable[..., Any]) -> None:
    _background[:] = [exporter]


def background_exporter() -> Callable[..., Any] | None:
    return _background[0] if _background else None


# --- custom columns -------------------------------------------------------------------

NUMBER_FORMATS = {
    FieldType.INTEGER: "0",
    FieldType.DECIMAL: "0.####",
    FieldType.MONEY: "#,##0.00",
}


def _custom_column(cf, label: str, lookups: Lookups) -> Column:
    key, kind = cf.key, cf.field_type

    def stored(row) -> Any:
        return (row.custom or {}).get(key)

    if kind in NUMBER_FORMATS:
        # The plain number ("3500000.50", not "¥3,500,000.50"): it reads back in Excel
        # and in an import.
        def number_text(row) -> str:
            raw = stored(row)
            return "" if raw is None or raw == "" else str(raw)

        return Column(
            cf.name,
            label,
            number_text,
            typed=lambda row: _number(stored(row)),
            number_format=NUMBER_FORMATS[kind],
        )
    if kind == FieldType.DATE:

        def day(row) -> date | str | None:
            raw = stored(row)
            if not raw:
                return None
            try:
                return date.fromisoformat(raw)
            except (TypeError, ValueError):
                return str(raw)

        return Column(
            cf.name,
            label,
            lambda row: types.display_value(cf, stored(row)),
            typed=day,
            number_format=EXCEL_DATE,
            width=12,
        )
    if kind == FieldType.DATETIME:

        def moment(row) -> datetime | str | None:
            value = types.from_storage(cf, stored(row))
            return _datetime_cell(value) if isinstance(value, datetime) else value

        return Column(
            cf.name,
            label,
            lambda row: types.display_value(cf, stored(row)),
            typed=moment,
            number_format=EXCEL_DATETIME,
            width=17,
        )

    def text(row) -> str:
        return types.display_value(
            cf,
            stored(row),
            items=lookups.items_by_code if cf.dictionary_id else None,
            users=lookups.users if kind == FieldType.USER else None,
        )

    wide = kind in (FieldType.LONG_TEXT, FieldType.URL, FieldType.MULTI_CHOICE)
    return Column(
        cf.name,
        label,
        text,
        text=kind in (FieldType.TEXT, FieldType.PHONE),
        width=30 if wide else 16,
    )


def columns(user, record_type: str, lookups: Lookups | None = None) -> list[Column]:
    """The columns of `record_type`'s export for `user`: standard ones less those the
    role hides, then the active custom fields the user may see."""
    lookups = lookups or Lookups()
    hidden = access.hidden_fields(user, record_type)
    result = [
        c
        for c in _exports[record_type].columns(lookups)
        if c.name not in hidden and hidden.isdisjoint(c.reveals)
    ]
    result += [
        _custom_column(spec.custom, spec.label, lookups)
        for spec in schema.custom_specs(user, record_type)
    ]
    return result


def rows_of(queryset: QuerySet, limit: int | None = None) -> Iterator:
    """The queryset's rows with what the columns read, in chunks: one query per chunk
    (and one per prefetch or `attach` per chunk), at most `limit` (by default MAX_ROWS)
    + 1 (to tell a cut-off)."""
    spec = _exports[queryset.model.record_type]
    if spec.select_related:
        queryset = queryset.select_related(*spec.select_related)
    if spec.prefetch_related:
        queryset = queryset.prefetch_related(*spec.prefetch_related)
    limit = MAX_ROWS if limit is None else limit
    rows = queryset[: limit + 1].iterator(chunk_size=CHUNK_SIZE)
    return _attached(rows, spec.attach) if spec.attach is not None else rows


def _attached(rows: Iterator, attach: Callable[[list], None]) -> Iterator:
    while chunk := list(islice(rows, CHUNK_SIZE)):
        attach(chunk)
        yield from chunk


def attach_tags(rows: list) -> None:
    """Each customer's tag names, by name (row.export_tags): one query per chunk."""
    names: dict[int, list[str]] = {row.pk: [] for row in rows}
    pairs = (
        Customer.tags.through.objects.filter(customer_id__in=list(names))
        .order_by("tag__name")
        .values_list("customer_id", "tag__name")
    )
    for customer_id, name in pairs:
        names[customer_id].append(name)
    for row in rows:
        row.export_tags = names[row.pk]


# --- writers --------------------------------------------------------------------------


@dataclass
class Written:
    rows: int
    truncated: bool  # more rows matched than the limit


@dataclass
class Export(Written):
    content: bytes = b""


# A long export reports how far it got this often (rows): a progress bar, not a query
# per row.
PROGRESS_EVERY = CHUNK_SIZE


class _Limited:
    """Up to `limit` rows of `rows`; `truncated` tells whether more followed. Calls
    `progress(count)` every PROGRESS_EVERY rows."""

    def __init__(
        self,
        rows: Iterable,
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
    ):
        self.rows, self.limit = rows, MAX_ROWS if limit is None else limit
        self.progress = progress
        self.count, self.truncated = 0, False

    def __iter__(self) -> Iterator:
        progress, every = self.progress, PROGRESS_EVERY
        for row in self.rows:
            if self.count >= self.limit:
                self.truncated = True
                return
            self.count += 1
            if progress is not None and not self.count % every:
                progress(self.count)
            yield row


# A cell Excel (or another spreadsheet) would run as a formula; numbers and phone
# numbers like "-12.5" or "+1 201-555-0123" are left alone.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?[\d\s().,-]*")
# What Excel does not allow in a sheet's name (with the spaces around it), how long one may
# be, and the name it keeps for itself.
SHEET_TITLE_FORBIDDEN = re.compile(r"\s*[\[\]:*?/\\\x00-\x1f]+\s*")
SHEET_TITLE_MAX = 31
SHEET_TITLE_RESERVED = "history"


def csv_safe(text: str) -> str:
    if text and text.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _csv_cell(value: Any) -> str:
    """A plain value as CSV text: a number as it is (-5 is no formula), text kept inert."""
    if value is None:
        return ""
    return str(value) if _is_number(value) else csv_safe(str(value))


def _csv_writer() -> tuple[io.StringIO, Any]:
    """UTF-8 with a byte-order mark, which Excel (Chinese Windows too) needs to read the
    file as UTF-8 instead of GBK."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    return buffer, csv.writer(buffer)


def write_csv_to(
    out: BinaryIO,
    columns: list[Column],
    rows: Iterable,
    *,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Written:
    """The CSV into the binary file `out` as the rows come (a file of any length in
    little memory): UTF-8 with a byte-order mark, formulas kept inert."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    text.write("\ufeff")
    writer = csv.writer(text)
    writer.writerow([csv_safe(str(column.label)) for column in columns])
    limited = _Limited(rows, limit, progress)
    for row in limited:
        writer.writerow([csv_safe(str(column.value(row) or "")) for column in columns])
    text.flush()
    text.detach()  # `out` stays open, for the caller
    return Written(limited.count, limited.truncated)


def write_csv(columns: list[Column], rows: Iterable, *, limit: int | None = None) -> Export:
    buffer = io.BytesIO()
    written = write_csv_to(buffer, columns, rows, limit=limit)
    return Export(written.rows, written.truncated, buffer.getvalue())


def _sheet_title(title: str, taken: set[str]) -> str:
    """A name Excel accepts for a sheet (a department's or person's name in a title
    may hold any character): without : \\ / ? * [ ], no apostrophe at either end, at
    most 31 characters, never empty, and not in `taken` (ignoring case, as Excel
    compares them), to which it is added."""
    name = " ".join(SHEET_TITLE_FORBIDDEN.sub(" ", str(title)).split()).strip("' ")
    name = name[:SHEET_TITLE_MAX].rstrip("' ") or "Sheet1"
    unique, number = name, 1
    while unique.lower() in taken:
        number += 1
        suffix = f" ({number})"
        unique = name[: SHEET_TITLE_MAX - len(suffix)].rstrip("' ") + suffix
    taken.add(unique.lower())
    return unique


class _Book:
    """An .xlsx written row by row into `out` (crm.xlsx: memory does not grow with the
    rows), whose text cells are always text: never a formula, an error or a number."""

    def __init__(self, out: BinaryIO | None = None):
        self._out = io.BytesIO() if out is None else out
        self._book = xlsx.Workbook(self._out)
        self._titles = {SHEET_TITLE_RESERVED}
        self.bold = self._book.style(bold=True)
        self.as_text = self._book.style(EXCEL_TEXT)  # formatted as text: phones, codes

    def add_sheet(self, title: str, header: Iterable[str], widths: Iterable[int] = ()) -> None:
        """A new sheet, the one written to next, with a bold header row that stays put."""
        self._book.add_sheet(_sheet_title(title, self._titles), widths=widths)
        labels = [str(label) for label in header]
        self._book.write_row(labels, [self.bold] * len(labels))

    def style(self, number_format: str | None) -> int:
        return self._book.style(number_format)

    def append(self, values: list, styles: list[int] | tuple = ()) -> None:
        self._book.write_row(values, styles)

    def close(self) -> None:
        self._book.close()

    def save(self) -> bytes:
        self.close()
        return self._out.getvalue()


def write_xlsx_to(
    out: BinaryIO,
    columns: list[Column],
    rows: Iterable,
    *,
    title: str,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Written:
    """The .xlsx into the binary file `out`, row by row: text cells stay text, numbers
    and dates are typed."""
    book = _Book(out)
    book.add_sheet(title, [c.label for c in columns], [c.width for c in columns])
    # Per column: the style of a text cell and of a typed one (a number, a date).
    plan = [
        (column.value, column.typed, book.as_text if column.text else 0,
         book.style(column.number_format))
        for column in columns
    ]  # fmt: skip
    limited = _Limited(rows, limit, progress)
    for row in limited:
        values, styles = [], []
        for text, typed, text_style, typed_style in plan:
            if typed is None:
                value = text(row)
                values.append(value if type(value) is str else "" if value is None else str(value))
                styles.append(text_style)
                continue
            value = typed(row)
            values.append(value)
            styles.append(text_style if value is None or isinstance(value, str) else typed_style)
        book.append(values, styles)
    book.close()
    return Written(limited.count, limited.truncated)


def write_xlsx(
    columns: list[Column], rows: Iterable, *, title: str, limit: int | None = None
) -> Export:
    buffer = io.BytesIO()
    written = write_xlsx_to(buffer, columns, rows, title=title, limit=limit)
    return Export(written.rows, written.truncated, buffer.getvalue())


def write(fmt: str, columns: list[Column], rows: Iterable, *, title: str) -> Export:
    if fmt == "xlsx":
        return write_xlsx(columns, rows, title=title)
    return write_csv(columns, rows)


def write_file(
    out: BinaryIO,
    fmt: str,
    columns: list[Column],
    rows: Iterable,
    *,
    title: str,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Written:
    """An export of any size into the binary file `out` (a background export's
    temporary file), telling `progress(rows written)` as it goes."""
    if fmt == "xlsx":
        return write_xlsx_to(out, columns, rows, title=title, limit=limit, progress=progress)
    return write_csv_to(out, columns, rows, limit=limit, progress=progress)


# --- several titled tables in one file (the reports' exports) -------------------------


@dataclass
class Sheet:
    """One titled table of `write_sheets`: a header and rows of plain values. Numbers
    (int, float, Decimal) stay numbers, None is an empty cell, anything else is text."""

    title: str
    header: list[str]
    rows: Iterable[Sequence[Any]]


def write_sheets(fmt: str, sheets: Iterable[Sheet]) -> bytes:
    """Several tables in one file, written as the record exports are (formulas kept
    inert, CSV with a byte-order mark): in a CSV one below the other, each after a blank
    row and its title, except the first (whose title names the file); in an .xlsx one
    sheet each."""
    if fmt == "xlsx":
        book = _Book()
        for sheet in sheets:
            book.add_sheet(sheet.title, sheet.header)
            for row in sheet.rows:
                book.append([value if _is_number(value) else _text(value) for value in row])
        return book.save()
    buffer, writer = _csv_writer()
    for index, sheet in enumerate(sheets):
        if index:
            writer.writerow([])
            writer.writerow([csv_safe(str(sheet.title))])
        writer.writerow([csv_safe(str(label)) for label in sheet.header])
        writer.writerows([_csv_cell(value) for value in row] for row in sheet.rows)
    return buffer.getvalue().encode("utf-8")
