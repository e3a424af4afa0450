"""The import engine: a file's rows into records, exactly as the forms would make them.

`plan(job)` reads the file and decides every row without writing anything (the preview
is a true dry run: no row, no sequence value, no event): each mapped column is converted
as a whole through crm.fields.coerce (one converter per column, its lookups loaded once,
equal cells converted once), defaults and the owner are applied, required fields and the
model's own rules checked, and duplicates matched on the chosen keys — within the file and
against every record in the database, so a match outside the importer's scope is
reported ("exists, owned by 王芳"), never taken for a new record and never updated.

`run(job)` writes the planned rows in batches, each batch in one transaction together
with the job's counters, so a worker killed mid-import leaves a job that resumes after
its last committed batch, never half-counted. New customers go in with a few bulk
inserts (their history rows and events too); other rows go through the record type's
services one by one, inside a savepoint, so a row the service refuses is reported and
the rest go in. Every write is made by the import's system actor (accounts.actors),
so history says "由导入 #12" and `undo` finds the import's records by their events.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models.base import ModelState
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts import access
from accounts.actors import ActorKind, acting, quiet
from accounts.models import User
from accounts.phones import format_phone
from crm.fields import coerce, schema
from crm.fields import types as field_types
from crm.fields import values as field_values
from crm.models import Contact, Customer, CustomField, Dictionary, DictionaryItem
from crm.services.history import display_value

from ..models import DuplicateStrategy, ImportJob, OwnerMode
from ..readers import Table, read_table
from ..specs import ImportSpec, import_spec

# Rows the preview shows as they will be stored.
PREVIEW_ROWS = 20
# Values per IN (...) query when matching duplicates and links.
CHUNK = 1000


class Action:
    CREATE = "create"
    UPDATE = "update"
    SKIP = "skip"
    ERROR = "error"


@dataclass(slots=True)
class Row:
    """One data row of the file and what the import will do with it (slots, and the
    rarely used containers made on first use: a file has a hundred thousand of these)."""

    index: int  # position among the table's data rows
    number: int  # row number in the file, as people count (the header is above)
    values: dict[str, Any] = field(default_factory=dict)  # coerced, by field name
    errors: list[str] = field(default_factory=list)
    action: str = Action.CREATE
    match_id: int | None = None  # the record an update changes
    note: str = ""  # why a row is skipped
    same_as: int | None = None  # the earlier row of the file this one duplicates
    pending: dict[str, str] | None = None  # dictionary items to add first, by field
    failed: tuple[str, ...] = ()  # fields whose cell was refused
    record: Any = None  # the record being written (built per batch by the run)

    def fail(self, message: str) -> None:
        self.errors.append(message)
        self.action = Action.ERROR


@dataclass(frozen=True)
class Target:
    """A field a column can be mapped to."""

    name: str  # a model field's name, or "cf_<key>"
    label: str
    required: bool = False
    custom: CustomField | None = None


@dataclass
class Plan:
    spec: ImportSpec
    table: Table
    rows: list[Row]
    targets: dict[str, Target]
    mapping: dict[int, str]  # column index → field name
    problems: list[str] = field(default_factory=list)  # stop the whole import
    # Dictionary items the file names that do not exist yet: {dictionary code: labels},
    # added by the run when an admin chose so.
    new_items: dict[str, set[str]] = field(default_factory=dict)
    # Converted values of the fields no column fills (the importer's and custom fields').
    defaults: dict[str, Any] = field(default_factory=dict)
    # Who owns a new record a row names no owner for: one person, or people in turn.
    default_owner: Any = None
    round_robin: Iterator[Any] | None = None
    # The stored records the update rows change, by id.
    existing: dict[int, models.Model] = field(default_factory=dict)

    @property
    def counts(self) -> Counter:
        return Counter(row.action for row in self.rows)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- Targets: what a column may be mapped to ------------------------------------------------


def principal_for(job: ImportJob) -> User:
    """The importer, acting as this import: same rights, recorded as "import #id". Its
    changes fire automation rules only when the importer asked for it (`run_automation`):
    otherwise they are quiet (their events' `automation_depth` is NULL)."""
    principal = acting(job.created_by, kind=ActorKind.IMPORT, id=job.pk, name=job.file_name[:200])
    return principal if job.run_automation else quiet(principal)


def _standard_label(spec: ImportSpec, name: str) -> str:
    return str(spec.model._meta.get_field(name).verbose_name)


def targets_for(spec: ImportSpec, user) -> dict[str, Target]:
    """The fields `user` may fill from a column: the spec's standard fields and the active
    custom fields, minus those the user's role hides or makes read-only (the record's
    name and owner are never restricted)."""
    restricted = access.hidden_fields(user, spec.record_type) | access.readonly_fields(
        user, spec.record_type
    )
    found: dict[str, Target] = {}
    for name in spec.fields:
        if name in restricted:
            continue
        model_field = spec.model._meta.get_field(name)
        required = (
            not model_field.blank
            and not model_field.has_default()
            and not model_field.many_to_many
            and name != spec.owner_field
            # The services choose the default pipeline and its first stage.
            and name not in ("pipeline", "stage")
        )
        found[name] = Target(name, str(model_field.verbose_name), required=required)
    for cf in schema.custom_fields(spec.record_type):
        if cf.name in restricted:
            continue
        found[cf.name] = Target(cf.name, cf.display_label, required=cf.required, custom=cf)
    return found


def _label_words(spec: ImportSpec, target: Target) -> list[str]:
    """Every header that names `target`: its labels in both languages, its key, synonyms."""
    from django.utils import translation

    words = [target.name, target.label]
    if target.custom is not None:
        words += [target.custom.key, target.custom.label, target.custom.label_en]
    else:
        for language in ("zh-hans", "en"):
            with translation.override(language):
                words.append(str(spec.model._meta.get_field(target.name).verbose_name))
        words += list(spec.synonyms_for(target.name))
    return [w for w in words if w]


def auto_map(spec: ImportSpec, headers: list[str], user) -> dict[int, str]:
    """Each column's field by its header: labels and keys first, then synonyms; a field
    goes to the first column that names it."""
    targets = targets_for(spec, user)
    exact: dict[str, str] = {}
    loose: dict[str, str] = {}
    for target in targets.values():
        words = _label_words(spec, target)
        labels, synonyms = words[:5], words[5:]
        for word in labels:
            exact.setdefault(coerce.match_key(word), target.name)
        for word in synonyms:
            loose.setdefault(coerce.match_key(word), target.name)
    mapping: dict[int, str] = {}
    taken: set[str] = set()
    for lookup in (exact, loose):
        for index, header in enumerate(headers):
            if index in mapping or not header:
                continue
            name = lookup.get(coerce.match_key(str(header)))
            if name and name not in taken:
                mapping[index] = name
                taken.add(name)
    return dict(sorted(mapping.items()))


def duplicate_key_choices(spec: ImportSpec, user) -> list[tuple[str, str]]:
    targets = targets_for(spec, user)
    keys = [(name, targets[name].label) for name in spec.duplicate_keys if name in targets]
    keys += [
        (t.name, t.label) for t in targets.values() if t.custom is not None and t.custom.unique
    ]
    return keys


# --- Reading --------------------------------------------------------------------------------


def read_job_table(job: ImportJob) -> Table:
    with job.file.open("rb") as handle:
        return read_table(
            handle,
            name=job.file_name,
            sheet=job.sheet or None,
            header_row=job.header_row or None,
            encoding=job.encoding or None,
            delimiter=job.delimiter or None,
        )


# --- Converting columns -----------------------------------------------------------------------


def _messages(exc: ValidationError) -> list[str]:
    return list(exc.messages)


def _memoised(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Equal cells (an owner, a level, a city) are converted once."""
    seen: dict[Any, tuple[bool, Any]] = {}

    def cached(raw: Any) -> Any:
        try:
            key = (type(raw), raw)
            hit = seen.get(key)
        except TypeError:  # unhashable
            return convert(raw)
        if hit is None:
            try:
                hit = (True, convert(raw))
            except ValidationError as exc:
                hit = (False, exc)
            seen[key] = hit
        if hit[0]:
            return hit[1]
        raise hit[1]

    return cached


class CustomerLink:
    """A row's customer from a cell: its exact name among the customers the importer
    sees, else a phone, else the value of a unique custom field. Loaded for a whole column
    in a few queries."""

    def __init__(self, user, raws: Iterable[Any]):
        self.user = user
        texts = {self._text(raw) for raw in raws if not coerce.is_empty(raw)}
        texts.discard(None)
        visible = Customer.objects.visible_to(user)
        self.by_name: dict[str, list[Customer]] = defaultdict(list)
        names = sorted(texts)
        for chunk in _chunks(names):
            for customer in one_of(visible, "name", chunk).select_related("owner"):
                self.by_name[customer.name].append(customer)
        self.by_phone: dict[str, list[Customer]] = defaultdict(list)
        phones = {}
        for text in texts:
            if text not in self.by_name:
                try:
                    phones[text] = coerce.to_phone(text)
                except ValidationError:
                    continue
        self.phone_of = phones
        for chunk in _chunks(sorted(set(phones.values()))):
            for customer in one_of(visible, "phone", chunk).select_related("owner"):
                self.by_phone[customer.phone].append(customer)
        self.by_custom: dict[str, list[Customer]] = defaultdict(list)
        unique = [cf for cf in schema.custom_fields("customer") if cf.unique]
        rest = [t for t in texts if t not in self.by_name and t not in phones]
        for cf in unique:
            for chunk in _chunks(rest):
                for customer in one_of(visible, f"custom__{cf.key}", chunk).select_related("owner"):
                    self.by_custom[str(customer.custom.get(cf.key))].append(customer)

    @staticmethod
    def _text(raw: Any) -> str | None:
        try:
            return coerce.to_text(raw)
        except ValidationError:
            return None

    def __call__(self, raw: Any) -> Customer:
        text = self._text(raw)
        if text is None:
            coerce.to_text(raw)  # raises its message
        for found in (
            self.by_name.get(text),
            self.by_phone.get(self.phone_of.get(text, "")),
            self.by_custom.get(text),
        ):
            if found:
                if len(found) > 1:
                    raise ValidationError(
                        _("More than one customer is called “%(value)s”: give its phone.")
                        % {"value": text}
                    )
                return found[0]
        raise ValidationError(_("No customer “%(value)s” that you may see.") % {"value": text})


class ContactLink:
    """A row's contact: by name or mobile among the contacts of the row's customer."""

    def __init__(self, customer_ids: Iterable[int], *, mobiles: Iterable[Any] = (), user=None):
        self.by_mobile: dict[str, list[Contact]] = defaultdict(list)
        numbers = set()
        for raw in mobiles:
            try:
                numbers.add(coerce.to_phone(raw))
            except ValidationError:
                continue
        if numbers and user is not None:
            visible = Contact.objects.visible_to(user).select_related("customer")
            for chunk in _chunks(sorted(numbers)):
                for contact in one_of(visible, "mobile", chunk):
                    self.by_mobile[contact.mobile].append(contact)
        self.contacts: dict[tuple[int, str], list[Contact]] = defaultdict(list)
        for chunk in _chunks(sorted(set(customer_ids))):
            for contact in Contact.objects.filter(customer_id__in=chunk).only(
                "id", "name", "mobile", "customer_id"
            ):
                self.contacts[(contact.customer_id, coerce.match_key(contact.name))].append(contact)
                if contact.mobile:
                    self.contacts[(contact.customer_id, contact.mobile)].append(contact)

    def find(self, customer: Customer | None, raw: Any) -> Contact:
        text = coerce.to_text(raw)
        if customer is None:
            try:
                found = self.by_mobile.get(coerce.to_phone(text), [])
            except ValidationError:
                found = []
            if len(found) == 1:
                return found[0]
            raise ValidationError(_("Give the customer of contact “%(value)s”.") % {"value": text})
        found = self.contacts.get((customer.pk, coerce.match_key(text)))
        if not found:
            try:
                found = self.contacts.get((customer.pk, coerce.to_phone(text)))
            except ValidationError:
                found = None
        if not found:
            raise ValidationError(
                _("“%(customer)s” has no contact “%(value)s”.")
                % {"customer": customer.name, "value": text}
            )
        if len(found) > 1:
            raise ValidationError(
                _("“%(customer)s” has more than one contact called “%(value)s”.")
                % {"customer": customer.name, "value": text}
            )
        return found[0]


def one_of(queryset: models.QuerySet, path: str, values: list) -> models.QuerySet:
    """Rows whose `path` (a text column, or "custom__<key>") is one of `values`.

    On PostgreSQL the list goes in as one array parameter (`IN (SELECT unnest(...))`):
    a plain `IN (1,000 literals)` on a column that also has a trigram index is planned
    on the trigram index, 6 s per query at 100k customers instead of 4 ms (bench/)."""
    if connection.vendor != "postgresql":
        return queryset.filter(**{f"{path}__in": values})
    texts = [v if isinstance(v, str) else str(v) for v in values]
    wanted = RawSQL("SELECT unnest(%s::text[])", [texts])
    if path.startswith("custom__"):
        return queryset.annotate(_one_of=KT(path)).filter(_one_of__in=wanted)
    return queryset.filter(**{f"{path}__in": wanted})


def _chunks(values: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _column(table: Table, index: int) -> list[Any]:
    return [row[index] for row in table.rows]


# --- Planning ---------------------------------------------------------------------------------


def plan(job: ImportJob, *, table: Table | None = None, resolve_duplicates: bool = True) -> Plan:
    """Decide every row of the job's file; write nothing."""
    spec = import_spec(job.record_type)
    user = principal_for(job)
    table = table if table is not None else read_job_table(job)
    targets = targets_for(spec, user)
    mapping = {int(index): name for index, name in (job.mapping or {}).items() if name}
    rows = [Row(index=i, number=n) for i, n in enumerate(table.row_numbers)]
    result = Plan(spec, table, rows, targets, mapping)

    for index, name in mapping.items():
        if name not in targets:
            result.problems.append(
                _("Column “%(column)s” is mapped to a field you may not set.")
                % {"column": _header(table, index)}
            )
        elif index >= len(table.headers):
            result.problems.append(_("The mapping names a column the file does not have."))
    names = list(mapping.values())
    for name in {n for n in names if names.count(n) > 1}:
        result.problems.append(
            _("More than one column is mapped to “%(field)s”.") % {"field": targets[name].label}
            if name in targets
            else _("More than one column is mapped to the same field.")
        )
    if result.problems:
        return result

    _convert_columns(result, job, user)
    _apply_defaults(result, job, user)
    _apply_owner(result, job, user)
    _check_required(result, job)
    if resolve_duplicates:
        _match_duplicates(result, job, user)
    _check_records(result, job, user)
    return result


def _header(table: Table, index: int) -> str:
    header = table.headers[index] if index < len(table.headers) else ""
    return header or _("column %(number)d") % {"number": index + 1}


def _converter(spec: ImportSpec, name: str, user, values: list[Any], *, instance=None):
    day_first = None
    model_field = None
    if not name.startswith("cf_"):
        model_field = spec.model._meta.get_field(name)
    is_date = isinstance(model_field, models.DateField) or (
        name.startswith("cf_")
        and any(
            cf.name == name and cf.field_type in ("date", "datetime")
            for cf in schema.custom_fields(spec.record_type)
        )
    )
    if is_date:
        day_first = coerce.day_first_in(values)
    return _memoised(
        coerce.coercer_for(
            spec.record_type, name, user=user, instance=instance, day_first=day_first
        )
    )


def _convert_columns(result: Plan, job: ImportJob, user) -> None:
    spec, table, rows = result.spec, result.table, result.rows
    deferred: dict[str, int] = {}
    for index, name in result.mapping.items():
        values = _column(table, index)
        header = _header(table, index)
        if name == "customer":
            convert = CustomerLink(user, values)
        elif name in ("contact", "stage") and spec.record_type in ("deal", "activity", "lead"):
            deferred[name] = index  # needs the row's customer or pipeline first
            continue
        else:
            convert = _converter(spec, name, user, values)
        dictionary = _dictionary_of(spec, name) if _may_create_items(job, user) else None
        for row, raw in zip(rows, values, strict=True):
            if coerce.is_empty(raw):
                continue
            try:
                row.values[name] = convert(raw)
            except ValidationError as exc:
                if dictionary is not None and _not_an_option(exc):
                    label = coerce.to_text(raw)
                    result.new_items.setdefault(dictionary, set()).add(label)
                    if row.pending is None:
                        row.pending = {}
                    row.pending[name] = label
                    continue
                row.failed += (name,)
                for message in _messages(exc):
                    row.fail(f"{header}: {message}")
    if "stage" in deferred:
        index = deferred["stage"]
        header = _header(table, index)
        by_pipeline: dict[int | None, Callable] = {}
        default = _default_pipeline(spec)
        values = _column(table, index)
        for row, raw in zip(rows, values, strict=True):
            if coerce.is_empty(raw):
                continue
            pipeline = row.values.get("pipeline") or default
            key = pipeline.pk if pipeline else None
            if key not in by_pipeline:
                instance = spec.model(pipeline=pipeline) if pipeline else None
                by_pipeline[key] = _converter(spec, "stage", user, values, instance=instance)
            try:
                row.values["stage"] = by_pipeline[key](raw)
            except ValidationError as exc:
                for message in _messages(exc):
                    row.fail(f"{header}: {message}")
    if "contact" in deferred:
        index = deferred["contact"]
        header = _header(table, index)
        values = _column(table, index)
        customers = [row.values.get("customer") for row in rows]
        link = ContactLink(
            (c.pk for c in customers if c is not None),
            # A follow-up may name only its contact, by mobile: its customer follows.
            mobiles=[
                raw
                for row, raw in zip(rows, values, strict=True)
                if spec.record_type == "activity" and "customer" not in row.values
            ],
            user=user,
        )
        for row, raw in zip(rows, values, strict=True):
            if coerce.is_empty(raw):
                continue
            try:
                contact = link.find(row.values.get("customer"), raw)
                row.values["contact"] = contact
                if spec.record_type == "activity" and "customer" not in row.values:
                    row.values["customer"] = contact.customer
            except ValidationError as exc:
                for message in _messages(exc):
                    row.fail(f"{header}: {message}")


def _may_create_items(job: ImportJob, user) -> bool:
    """An admin may let the import add the dictionary items the file names."""
    return job.create_missing_items and user.is_superuser


def _dictionary_of(spec: ImportSpec, name: str) -> str | None:
    """The code of the dictionary a field's values come from, if it is a picklist."""
    if name.startswith("cf_"):
        cf = next((c for c in schema.custom_fields(spec.record_type) if c.name == name), None)
        return cf.dictionary.code if cf is not None and cf.dictionary_id else None
    model_field = spec.model._meta.get_field(name)
    if model_field.is_relation and model_field.related_model is DictionaryItem:
        return (model_field.remote_field.limit_choices_to or {}).get("dictionary__code")
    return None


def _not_an_option(exc: ValidationError) -> bool:
    return all(error.code == "invalid_choice" for error in exc.error_list)


def create_missing_items(result: Plan) -> int:
    """Add the dictionary items the plan found missing (the run does this, never the
    preview), each with a code made from its label."""
    created = 0
    for code, labels in result.new_items.items():
        dictionary = Dictionary.objects.filter(code=code).first()
        if dictionary is None:
            continue  # removed meanwhile: the rows are refused when planned again
        taken = set(dictionary.items.values_list("code", flat=True))
        order = (dictionary.items.aggregate(models.Max("order"))["order__max"] or 0) + 10
        for label in sorted(labels):
            base = slugify(label)[:40] or "item"
            item_code, number = base, 1
            while item_code in taken:
                number += 1
                item_code = f"{base}-{number}"
            taken.add(item_code)
            DictionaryItem.objects.create(
                dictionary=dictionary, code=item_code, label=label[:100], order=order
            )
            order += 10
            created += 1
    return created


def _default_pipeline(spec: ImportSpec):
    if spec.record_type not in ("lead", "deal"):
        return None
    from pipelines.services import default_pipeline

    try:
        return default_pipeline(spec.record_type)
    except ValidationError:
        return None


def _apply_defaults(result: Plan, job: ImportJob, user) -> None:
    """Defaults the importer gave for fields no column fills, and a custom field's own
    default (as the form starts with it)."""
    mapped = set(result.mapping.values())
    defaults = {k: v for k, v in (job.defaults or {}).items() if k not in mapped}
    converted: dict[str, Any] = {}
    for name, raw in defaults.items():
        if name not in result.targets or coerce.is_empty(raw):
            continue
        try:
            converted[name] = _converter(result.spec, name, user, [raw])(raw)
        except ValidationError as exc:
            result.problems.append(
                _("The default for “%(field)s”: %(error)s")
                % {"field": result.targets[name].label, "error": " ".join(exc.messages)}
            )
    for target in result.targets.values():
        cf = target.custom
        if cf is None or cf.name in mapped or cf.name in converted or not cf.default:
            continue
        try:
            converted[cf.name] = field_types.to_storage(
                cf, field_types.clean_value(cf, cf.default, required=False)
            )
        except ValidationError:
            continue
    result.defaults = converted


def _apply_owner(result: Plan, job: ImportJob, user) -> None:
    spec = result.spec
    owner_field = spec.owner_field
    if owner_field is None:
        return
    mode = job.owner_mode
    if mode == OwnerMode.NONE and not spec.pool:
        result.problems.append(_("These records need an owner: choose who owns them."))
        return
    if mode == OwnerMode.FIXED:
        if job.owner_id is None or not access.users_in_scope(user).filter(pk=job.owner_id).exists():
            result.problems.append(_("Choose an owner you may assign records to."))
            return
        result.default_owner = job.owner
    elif mode == OwnerMode.ROUND_ROBIN:
        people = list(
            access.users_in_scope(user)
            .filter(department_id=job.owner_department_id)
            .order_by("username")
        )
        if not people:
            result.problems.append(_("The chosen department has nobody you may assign records to."))
            return
        result.round_robin = itertools.cycle(people)
    elif mode in (OwnerMode.IMPORTER, OwnerMode.COLUMN):
        result.default_owner = job.created_by


def _check_required(result: Plan, job: ImportJob) -> None:
    mapped = set(result.mapping.values()) | set(result.defaults)
    missing = [
        t
        for t in result.targets.values()
        if t.required and t.name not in mapped and t.custom is None
    ]
    for target in missing:
        result.problems.append(
            _("Map a column to “%(field)s”: every new record needs it.") % {"field": target.label}
        )
    required = [t for t in result.targets.values() if t.required and t.name in mapped]
    defaults = result.defaults
    for row in result.rows:
        for target in required:
            name = target.name
            if name not in row.values and name not in defaults and name not in row.failed:
                row.fail(_("%(field)s cannot be empty.") % {"field": target.label})


# --- Duplicates -------------------------------------------------------------------------------


def _key_value(name: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, str):
        return coerce.match_key(value) if name in ("name", "title", "company_name") else value
    return value


def _owner_name(record) -> str:
    owner = getattr(record, "owner", None)
    if owner is None and hasattr(record, "customer"):
        owner = getattr(record.customer, "owner", None)
    if owner is None:
        return _("the public pool")
    return owner.name or owner.username


def _match_duplicates(result: Plan, job: ImportJob, user) -> None:
    keys = [k for k in (job.duplicate_keys or []) if k in result.targets]
    if not keys:
        return
    spec = result.spec
    within = spec.duplicate_within
    strategy = job.duplicate_strategy

    def row_keys(row: Row) -> list[tuple]:
        found = []
        scope = _key_value(within, row.values.get(within)) if within else None
        for key in keys:
            value = _key_value(key, row.values.get(key))
            if value is not None:
                found.append((key, scope, value))
        return found

    # In the file: a later row with a key of an earlier row.
    first_by_key: dict[tuple, Row] = {}
    for row in result.rows:
        if row.action == Action.ERROR:
            continue
        for key in row_keys(row):
            earlier = first_by_key.get(key)
            if earlier is not None and earlier is not row:
                row.same_as = earlier.index
                break
        for key in row_keys(row):
            first_by_key.setdefault(key, row)

    # In the database: every record, in scope or not.
    matches: dict[tuple, list[int]] = defaultdict(list)
    model = spec.model
    for key in keys:
        wanted = sorted(
            {
                rk[2]
                for row in result.rows
                if row.action != Action.ERROR
                for rk in row_keys(row)
                if rk[0] == key
            },
            key=str,
        )
        if not wanted:
            continue
        for chunk in _chunks(wanted):
            for pk, scope, stored in _stored_keys(spec, key, chunk):
                matches[(key, scope if within else None, stored)].append(pk)
    matched_ids = {pk for ids in matches.values() for pk in ids}
    editable: set[int] = set()
    records: dict[int, models.Model] = {}
    ids = sorted(matched_ids)
    for chunk in _chunks(ids):
        editable |= set(
            model.objects.editable_by(user).filter(pk__in=chunk).values_list("pk", flat=True)
        )
        related = ["owner"] if spec.owner_field == "owner" else []
        if within:
            related.append(f"{within}__owner")
        for record in model.objects.filter(pk__in=chunk).select_related(*related):
            records[record.pk] = record

    for row in result.rows:
        if row.action == Action.ERROR:
            continue
        found: list[int] = []
        for key in row_keys(row):
            for pk in matches.get(key, ()):
                if pk not in found:
                    found.append(pk)
        if found:
            outside = [pk for pk in found if pk not in editable]
            if outside:
                row.fail(
                    _("Exists already, owned by %(owner)s: you may not change it.")
                    % {"owner": _owner_name(records[outside[0]])}
                )
                continue
            if strategy == DuplicateStrategy.SKIP:
                row.action = Action.SKIP
                row.note = _("Exists already: %(record)s") % {"record": records[found[0]]}
            elif strategy == DuplicateStrategy.UPDATE:
                if len(found) > 1:
                    row.fail(
                        _("Matches %(count)d existing records: which one to update is unclear.")
                        % {"count": len(found)}
                    )
                else:
                    row.action = Action.UPDATE
                    row.match_id = found[0]
            continue
        if row.same_as is not None and strategy != DuplicateStrategy.CREATE:
            earlier = result.rows[row.same_as]
            if strategy == DuplicateStrategy.SKIP or earlier.action == Action.ERROR:
                row.action = Action.SKIP
                row.note = _("Same as row %(number)d of this file.") % {"number": earlier.number}
            else:
                # Update: the earlier row's record gets this row's values too.
                row.action = Action.SKIP
                row.note = _("Merged into row %(number)d of this file.") % {
                    "number": earlier.number
                }
                earlier.values.update(row.values)


def _stored_keys(spec: ImportSpec, key: str, chunk: list) -> Iterator[tuple[int, Any, Any]]:
    """(pk, scope value, key value) of the stored records whose `key` is in `chunk`."""
    model = spec.model
    within = spec.duplicate_within
    within_attr = f"{within}_id" if within else None
    if key.startswith("cf_"):
        cf_key = key.removeprefix("cf_")
        for pk, scope, custom in one_of(
            model.objects.all(), f"custom__{cf_key}", chunk
        ).values_list("pk", within_attr or "pk", "custom"):
            yield pk, scope, _key_value(key, (custom or {}).get(cf_key))
        return
    model_field = model._meta.get_field(key)
    if key in ("name", "title", "company_name"):
        # Compared case- and width-folded: fetch candidates by their exact text in any
        # case, then fold.
        from django.db.models.functions import Upper

        uppers = sorted({str(v).upper() for v in chunk})
        rows = model.objects.annotate(_key=Upper(key)).filter(_key__in=uppers)
        for pk, scope, stored in rows.values_list("pk", within_attr or "pk", key):
            yield pk, scope, _key_value(key, stored)
        # Full-width or differently spaced forms are caught too when exact.
        return
    if model_field.is_relation:
        chunk = [getattr(v, "pk", v) for v in chunk]
    found = (
        model.objects.filter(**{f"{key}__in": chunk})
        if model_field.is_relation
        else one_of(model.objects.all(), key, chunk)
    )
    for pk, scope, stored in found.values_list("pk", within_attr or "pk", model_field.attname):
        yield pk, scope, _key_value(key, stored)


# --- Checking records as the services would ------------------------------------------------


def _check_records(result: Plan, job: ImportJob, user) -> None:
    """Build each new or changed record and run the model's own rules (as a form's
    full_clean would), and the type's: a contact's customer must be one the importer may
    change; a deal's stage may require fields."""
    spec = result.spec
    updates = [row.match_id for row in result.rows if row.action == Action.UPDATE]
    existing: dict[int, models.Model] = {}
    for chunk in _chunks(sorted(set(updates))):
        existing.update(spec.model.objects.in_bulk(chunk))
    result.existing = existing
    editable_customers: set[int] = set()
    if spec.record_type == "contact":
        ids = sorted({row.values["customer"].pk for row in result.rows if "customer" in row.values})
        for chunk in _chunks(ids):
            editable_customers |= set(
                Customer.objects.editable_by(user).filter(pk__in=chunk).values_list("pk", flat=True)
            )
    may_add = access.has_permission(user, spec.record_type, "add")
    may_change = access.has_permission(user, spec.record_type, "change")
    for row in result.rows:
        if row.action == Action.CREATE and not may_add:
            row.fail(_("You may not add %(type)s.") % {"type": spec.label})
            continue
        if row.action == Action.UPDATE and not may_change:
            row.fail(_("You may not change %(type)s.") % {"type": spec.label})
            continue
        if row.action not in (Action.CREATE, Action.UPDATE):
            continue
        customer = row.values.get("customer")
        if spec.record_type == "contact" and customer is not None:  # noqa: SIM102
            if customer.pk not in editable_customers:
                row.fail(
                    _("You may not add contacts to “%(customer)s”.")
                    % {"customer": row.values["customer"]}
                )
                continue
        if spec.record_type == "activity" and row.values.get("customer") is None:
            row.fail(_("Give the follow-up's customer or its contact's mobile."))
            continue
        if row.action == Action.CREATE and spec.owner_field:
            # Decided once, here: the run builds the same record from the same values.
            owner = _next_owner(result, row)
            if owner is not None or spec.pool:
                row.values[spec.owner_field] = owner
        record = build_record(result, row)
        try:
            # Each value passed its field's validators when it was converted (and unset
            # fields hold their defaults): what is left is the model's own rules.
            record.clean()
        except ValidationError as exc:
            errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
            for name, messages in errors.items():
                label = result.targets[name].label if name in result.targets else ""
                for message in messages:
                    row.fail(f"{label}: {message}" if label and name != "__all__" else message)
            continue
        # Not kept: a hundred thousand records in memory cost more than building each
        # batch's again when it is written.
    _check_unique_custom(result)
    if spec.record_type in ("lead", "deal"):
        _check_stage_requirements(result)


def _next_owner(result: Plan, row: Row):
    owner_field = result.spec.owner_field
    if owner_field in row.values:
        return row.values[owner_field]
    if result.round_robin is not None:
        return next(result.round_robin)
    return result.default_owner


_BLANKS: dict[type, tuple[models.Model, list[models.Field]]] = {}


def _new_record(model: type[models.Model]) -> models.Model:
    """A new, unsaved record with its fields' defaults, as `model()` makes it, without
    running Model.__init__ for each of a file's rows: a copy of one blank record, whose
    callable defaults (now, a fresh dict) are evaluated again for each copy."""
    if model not in _BLANKS:
        fresh = [f for f in model._meta.concrete_fields if f.has_default() and callable(f.default)]
        _BLANKS[model] = (model(), fresh)
    blank, fresh = _BLANKS[model]
    record = model.__new__(model)
    record.__dict__ = blank.__dict__.copy()
    record._state = ModelState()
    for model_field in fresh:
        record.__dict__[model_field.attname] = model_field.get_default()
    return record


def put_custom(custom: dict[str, Any], name: str, value: Any) -> None:
    """Set custom field `name` ("cf_<key>") in a record's `custom` JSON; None removes it
    (an empty custom value is not stored)."""
    key = name.removeprefix("cf_")
    if value is None:
        custom.pop(key, None)
    else:
        custom[key] = value


def build_record(result: Plan, row: Row) -> models.Model:
    """The unsaved record a row makes (new) or the existing one with the row's values
    (update): standard values as attributes, custom values into `custom`; tags kept aside
    on the row (`row.values["tags"]`)."""
    spec = result.spec
    defaults = result.defaults
    if row.action == Action.UPDATE:
        record = result.existing[row.match_id]
        values = dict(row.values)
    else:
        record = _new_record(spec.model)
        values = {**defaults, **row.values}
    custom = dict(getattr(record, "custom", None) or {})
    for name, value in values.items():
        if name == "tags":
            continue
        if name.startswith("cf_"):
            put_custom(custom, name, value)
            continue
        setattr(record, name, value)
    if hasattr(record, "custom"):
        record.custom = custom
    return record


def _check_unique_custom(result: Plan) -> None:
    """A unique custom field's value must not be another record's, stored or in the file."""
    spec = result.spec
    for target in result.targets.values():
        cf = target.custom
        if cf is None or not cf.unique:
            continue
        rows = [
            r
            for r in result.rows
            if r.action in (Action.CREATE, Action.UPDATE) and r.values.get(cf.name) is not None
        ]
        seen: dict[Any, Row] = {}
        for row in rows:
            value = row.values[cf.name]
            if value in seen:
                row.fail(
                    _("%(field)s “%(value)s” is also in row %(number)d.")
                    % {"field": cf.display_label, "value": value, "number": seen[value].number}
                )
            else:
                seen[value] = row
        values = sorted(seen, key=str)
        taken: dict[Any, int] = {}
        for chunk in _chunks(values):
            for pk, custom in one_of(
                spec.model.objects.all(), f"custom__{cf.key}", chunk
            ).values_list("pk", "custom"):
                taken[(custom or {}).get(cf.key)] = pk
        for value, row in seen.items():
            owner_pk = taken.get(value)
            if owner_pk is not None and owner_pk != row.match_id and row.action != Action.ERROR:
                row.fail(field_types.unique_message(cf) + f" ({value})")


def _check_stage_requirements(result: Plan) -> None:
    """Where each new lead or deal starts, and the fields its stage requires, checked as
    the create service will (one lookup per pipeline and stage, not per row)."""
    from pipelines.services import missing_fields, starting_point

    kind = result.spec.record_type
    starts: dict[tuple, tuple | list[str]] = {}
    for row in result.rows:
        if row.action != Action.CREATE:
            continue
        pipeline, stage = row.values.get("pipeline"), row.values.get("stage")
        key = (getattr(pipeline, "pk", None), getattr(stage, "pk", None))
        if key not in starts:
            try:
                starts[key] = starting_point(kind, pipeline, stage)
            except ValidationError as exc:
                starts[key] = exc.messages
        start = starts[key]
        if isinstance(start, list):
            for message in start:
                row.fail(message)
            continue
        record = build_record(result, row)
        record.pipeline, stage = start
        for _name, label in missing_fields(record, stage):
            row.fail(
                _("%(field)s is required at the stage “%(stage)s”.")
                % {"field": label, "stage": stage.display_name}
            )


# --- What the preview shows ---------------------------------------------------------------------


def shown(record_type: str, name: str, value: Any) -> str:
    """A converted value as the preview shows it: as history would, people by name and
    phones as people read them."""
    if value is None or value == "":
        return ""
    if name.startswith("cf_"):
        return str(field_values.history_display(record_type, name.removeprefix("cf_"), value))
    if isinstance(value, User):
        return value.name or value.username
    if name in ("phone", "mobile") and isinstance(value, str):
        return format_phone(value)
    return display_value(value)
