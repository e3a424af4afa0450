"""Moving the configuration between systems as JSON (`manage.py export_config` and
`import_config`).

The file names everything by its natural key — a dictionary by its code, an item by its
code within the dictionary, a custom field by record type and key, a role by its name —
never by a database id, and lists everything in a stable order, so two exports of the
same configuration are the same text and a file can be reviewed as a diff.

Importing creates what is missing and updates what differs, by natural key, in one
transaction; what the system has and the file does not is left as it is. The whole file
is checked first — shapes and types, references (a custom field's dictionary), then
each object's own validation (model `full_clean`, which for a custom field includes its
definition checks) — and if anything is wrong nothing is changed and every problem is
reported. A dry run does the same work and rolls it back, so it reports exactly what a
real run would change. Every change is logged to the configuration log (source
"import_config"); importing the same file twice changes nothing the second time.

Later apps (pipelines, automation) add their part with `register_section(...)`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.translation import gettext as _

from accounts import access
from accounts.models import DataScope, FieldAccess, Role

from ..models import CustomField, CustomFieldRecordType, Dictionary, DictionaryItem, FieldType
from .log import acting_as, diff, plain_value, snapshot

FORMAT = "crm-config"
VERSION = 1
SOURCE = "import_config"


# --- Results ---------------------------------------------------------------------------


@dataclass
class ObjectChange:
    section: str
    key: str
    action: str  # "create" or "update"
    changes: list[dict[str, Any]]
    model: str = ""  # label, e.g. "crm.dictionaryitem"


@dataclass
class ImportResult:
    dry_run: bool = False
    changes: list[ObjectChange] = field(default_factory=list)
    unchanged: int = 0
    # section → natural keys the system has and the file does not (left as they are)
    not_in_file: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(1 for c in self.changes if c.action == "create")

    @property
    def updated(self) -> int:
        return sum(1 for c in self.changes if c.action == "update")


class ConfigFileError(Exception):
    """The file cannot be imported; `messages` says every reason. Nothing was changed."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


@dataclass
class Entry:
    """One object of the file, checked: its natural key, where it is in the file (for
    messages), its field values converted to Python, and anything section-specific."""

    key: str
    where: str
    values: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


class Context:
    """What an import knows while it runs: the whole file, the problems found so far,
    the changes made."""

    def __init__(self, data: dict[str, Any], result: ImportResult):
        self.data = data
        self.result = result

    @property
    def errors(self) -> list[str]:
        return self.result.errors

    def error(self, where: str, message: str) -> None:
        self.result.errors.append(f"{where}: {message}")

    def validation_error(self, where: str, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict"):
            for name, errors in exc.message_dict.items():
                for message in errors:
                    label = where if name == "__all__" else f"{where}.{name}"
                    self.error(label, message)
        else:
            for message in exc.messages:
                self.error(where, message)


def duplicate_key_message(key: str) -> str:
    """The error for a key given twice in one list; sections of other apps use it too, so a
    duplicate reads the same in every part of the file."""
    return _("“%(key)s” appears twice in the file") % {"key": key}


# --- Field values ------------------------------------------------------------------------


def export_values(obj: models.Model, names: Iterable[str]) -> dict[str, Any]:
    return {name: plain_value(obj._meta.get_field(name), getattr(obj, name)) for name in names}


def coerce(model: type[models.Model], name: str, value: Any) -> Any:
    """A JSON value for the model field `name`, as Python; ValueError says what is wrong.
    Strict on purpose: a yes/no field takes true/false, not "yes"."""
    f = model._meta.get_field(name)
    if value is None:
        if f.null:
            return None
        if isinstance(f, models.CharField | models.TextField):
            return ""
        raise ValueError(_("a value is required"))
    if isinstance(f, models.BooleanField):
        if not isinstance(value, bool):
            raise ValueError(_("must be true or false"))
        return value
    if isinstance(f, models.IntegerField):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(_("must be a whole number"))
        return value
    if isinstance(f, models.DecimalField):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(_("must be a number"))
        try:
            return f.to_python(str(value))
        except ValidationError as exc:
            raise ValueError(" ".join(exc.messages)) from exc
    if isinstance(f, models.CharField | models.TextField):
        if not isinstance(value, str):
            raise ValueError(_("must be text"))
        return value
    if isinstance(f, models.JSONField):
        return value
    raise ValueError(_("cannot be set from a file"))  # pragma: no cover - sections say


# --- Sections ----------------------------------------------------------------------------


class Section:
    """One part of the configuration file. Subclasses name the model, its natural key
    and the fields the file carries; override `check_entry` / `assign` / `after_save`
    for references and nested objects."""

    key: str = ""
    title: str = ""
    order: int = 100
    model: type[models.Model]
    key_fields: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    # Keys an entry may carry besides key_fields and fields (handled by the section).
    extra_keys: tuple[str, ...] = ()

    # export ------------------------------------------------------------------------

    def queryset(self) -> models.QuerySet:
        return self.model._default_manager.all()

    def export(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    # import ------------------------------------------------------------------------

    def natural_key(self, values: dict[str, Any]) -> str:
        return ".".join(str(values[name]) for name in self.key_fields)

    def check(self, raw: Any, ctx: Context) -> list[Entry]:
        if not isinstance(raw, list):
            ctx.error(self.key, _("must be a list"))
            return []
        entries, seen = [], set()
        for index, item in enumerate(raw):
            entry = self.check_object(item, f"{self.key}[{index}]", ctx)
            if entry is None:
                continue
            if entry.key in seen:
                ctx.error(entry.where, duplicate_key_message(entry.key))
                continue
            seen.add(entry.key)
            entries.append(entry)
        return entries

    def check_object(self, item: Any, where: str, ctx: Context, prefix: str = "") -> Entry | None:
        """`where` names the object in messages until its key is known, then
        `prefix[key]` does (prefix defaults to the section's key)."""
        model = self.model
        if not isinstance(item, dict):
            ctx.error(where, _("must be an object"))
            return None
        values, ok = {}, True
        for name in self.key_fields:
            if not isinstance(item.get(name), str) or not item[name].strip():
                ctx.error(where, _("“%(name)s” is missing") % {"name": name})
                ok = False
        if not ok:
            return None
        label = f"{prefix or self.key}[{self.natural_key(item)}]"
        unknown = set(item) - set(self.key_fields) - set(self.fields) - set(self.extra_keys)
        for name in sorted(unknown):
            ctx.error(label, _("unknown attribute “%(name)s”") % {"name": name})
        for name in (*self.key_fields, *self.fields):
            if name not in item:
                continue
            try:
                values[name] = coerce(model, name, item[name])
            except ValueError as exc:
                ctx.error(f"{label}.{name}", str(exc))
        entry = Entry(self.natural_key(item), label, values)
        entry.extra = {name: item[name] for name in self.extra_keys if name in item}
        self.check_entry(entry, ctx)
        return entry

    def check_entry(self, entry: Entry, ctx: Context) -> None:
        """Section-specific checks that need no database writes."""

    def lookup(self, entry: Entry) -> models.Model | None:
        lookup = {name: entry.values[name] for name in self.key_fields}
        return self.queryset().filter(**lookup).first()

    def assign(self, obj: models.Model, entry: Entry, ctx: Context) -> None:
        for name, value in entry.values.items():
            setattr(obj, name, value)

    def apply(self, entries: list[Entry], ctx: Context) -> None:
        for entry in entries:
            obj = self.sync_object(self.model, self.lookup(entry), entry, ctx)
            if obj is not None:
                self.after_save(obj, entry, ctx)

    def sync_object(self, model, obj, entry: Entry, ctx: Context, **fixed) -> models.Model | None:
        """Create or update one object; returns it saved (or unchanged), or None when it
        is invalid (the problem is in ctx.errors)."""
        created = obj is None
        if created:
            obj = model(**fixed)
        before = None if created else snapshot(obj)
        self.assign(obj, entry, ctx)
        after = snapshot(obj)
        changes = diff(before, after)
        if not created and not changes:
            ctx.result.unchanged += 1
            return obj
        try:
            obj.full_clean()
        except ValidationError as exc:
            ctx.validation_error(entry.where, exc)
            return None
        obj.save()
        action = "create" if created else "update"
        ctx.result.changes.append(
            ObjectChange(self.key, entry.key, action, changes, model._meta.label_lower)
        )
        return obj

    def after_save(self, obj: models.Model, entry: Entry, ctx: Context) -> None:
        """Nested objects (a dictionary's items)."""

    def keys_in_system(self) -> list[str]:
        return [
            ".".join(str(getattr(obj, name)) for name in self.key_fields) for obj in self.queryset()
        ]


class DictionarySection(Section):
    key = "dictionaries"
    order = 10
    model = Dictionary
    key_fields = ("code",)
    fields = ("name",)
    extra_keys = ("items",)
    item_fields = ("label", "label_en", "order", "color", "is_default", "is_active")

    @property
    def title(self) -> str:
        return _("Data dictionaries")

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for dictionary in self.queryset().order_by("code").prefetch_related("items"):
            items = sorted(dictionary.items.all(), key=lambda i: (i.order, i.code))
            rows.append(
                {
                    "code": dictionary.code,
                    **export_values(dictionary, self.fields),
                    "items": [
                        {"code": item.code, **export_values(item, self.item_fields)}
                        for item in items
                    ],
                }
            )
        return rows

    def check_entry(self, entry: Entry, ctx: Context) -> None:
        raw = entry.extra.get("items", [])
        if not isinstance(raw, list):
            ctx.error(f"{entry.where}.items", _("must be a list"))
            entry.extra["items"] = []
            return
        items, seen = [], set()
        shape = _ItemShape()
        for index, item in enumerate(raw):
            where = f"{entry.where}.items[{index}]"
            checked = shape.check_object(item, where, ctx, prefix=f"{entry.where}.items")
            if checked is None:
                continue
            if checked.key in seen:
                ctx.error(checked.where, duplicate_key_message(checked.key))
                continue
            seen.add(checked.key)
            items.append(checked)
        entry.extra["items"] = items

    def after_save(self, dictionary: Dictionary, entry: Entry, ctx: Context) -> None:
        shape = _ItemShape()
        existing = {item.code: item for item in dictionary.items.all()}
        for item in entry.extra.get("items", []):
            item.key = f"{entry.key}.{item.key}"
            shape.sync_object(
                DictionaryItem,
                existing.get(item.values["code"]),
                item,
                ctx,
                dictionary=dictionary,
            )


class _ItemShape(Section):
    """A dictionary item inside its dictionary's entry."""

    key = "dictionaries"
    model = DictionaryItem
    key_fields = ("code",)
    fields = DictionarySection.item_fields


class CustomFieldSection(Section):
    key = "custom_fields"
    order = 20
    model = CustomField
    key_fields = ("record_type", "key")
    fields = (
        "label",
        "label_en",
        "field_type",
        "required",
        "unique",
        "max_length",
        "min_value",
        "max_value",
        "pattern",
        "pattern_message",
        "pattern_message_en",
        "default",
        "help_text",
        "help_text_en",
        "section",
        "order",
        "is_active",
        "show_in_list",
        "filterable",
    )
    extra_keys = ("dictionary",)

    @property
    def title(self) -> str:
        return _("Custom fields")

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for cf in (
            self.queryset().select_related("dictionary").order_by("record_type", "order", "key")
        ):
            row = {"record_type": cf.record_type, "key": cf.key}
            values = export_values(cf, self.fields)
            row.update({"label": values.pop("label"), "label_en": values.pop("label_en")})
            row["field_type"] = values.pop("field_type")
            row["dictionary"] = cf.dictionary.code if cf.dictionary_id else None
            row.update(values)
            rows.append(row)
        return rows

    def check_entry(self, entry: Entry, ctx: Context) -> None:
        record_type = entry.values.get("record_type")
        if record_type not in CustomFieldRecordType.values:
            ctx.error(
                f"{entry.where}.record_type",
                _("unknown record type “%(value)s”; use one of: %(choices)s")
                % {"value": record_type, "choices": ", ".join(CustomFieldRecordType.values)},
            )
        field_type = entry.values.get("field_type")
        if field_type is not None and field_type not in FieldType.values:
            ctx.error(
                f"{entry.where}.field_type",
                _("unknown field type “%(value)s”; use one of: %(choices)s")
                % {"value": field_type, "choices": ", ".join(FieldType.values)},
            )
        code = entry.extra.get("dictionary")
        if code is not None and not isinstance(code, str):
            ctx.error(f"{entry.where}.dictionary", _("must be a dictionary code or null"))
        elif code:
            in_file = {
                d.get("code") for d in ctx.data.get("dictionaries") or [] if isinstance(d, dict)
            }
            if code not in in_file and not Dictionary.objects.filter(code=code).exists():
                ctx.error(
                    f"{entry.where}.dictionary",
                    _("unknown dictionary “%(code)s”: neither in the file nor in this system")
                    % {"code": code},
                )

    def assign(self, obj: CustomField, entry: Entry, ctx: Context) -> None:
        super().assign(obj, entry, ctx)
        if "dictionary" in entry.extra:
            code = entry.extra["dictionary"]
            obj.dictionary = Dictionary.objects.filter(code=code).first() if code else None


PERMISSION = re.compile(r"^[a-z][a-z0-9_]*\.[a-z_]+$")


class RoleSection(Section):
    key = "roles"
    order = 30
    model = Role
    key_fields = ("name",)
    fields = ("description", "data_scope", "permissions", "field_permissions", "max_customers")

    @property
    def title(self) -> str:
        return _("Roles")

    def export(self) -> list[dict[str, Any]]:
        rows = []
        for role in self.queryset().order_by("name"):
            values = export_values(role, self.fields)
            values["permissions"] = sorted(values["permissions"] or [])
            values["field_permissions"] = {
                rt: dict(sorted(levels.items()))
                for rt, levels in sorted((values["field_permissions"] or {}).items())
            }
            rows.append({"name": role.name, **values})
        return rows

    def assign(self, obj: Role, entry: Entry, ctx: Context) -> None:
        permissions = entry.values.get("permissions")
        super().assign(obj, entry, ctx)
        stored = (
            Role.objects.filter(pk=obj.pk).values_list("permissions", flat=True).first()
            if obj.pk
            else None
        )
        if permissions is not None and stored is not None and set(stored) == set(permissions):
            obj.permissions = stored  # the same grants in another order are no change

    def check_entry(self, entry: Entry, ctx: Context) -> None:
        values = entry.values
        scope = values.get("data_scope")
        if scope is not None and scope not in DataScope.values:
            ctx.error(
                f"{entry.where}.data_scope",
                _("unknown data scope “%(value)s”; use one of: %(choices)s")
                % {"value": scope, "choices": ", ".join(DataScope.values)},
            )
        if "permissions" in values:
            permissions = values["permissions"]
            if not isinstance(permissions, list) or not all(
                isinstance(p, str) and PERMISSION.match(p) for p in permissions
            ):
                ctx.error(
                    f"{entry.where}.permissions",
                    _('must be a list like ["customer.view", "customer.change"]'),
                )
            else:
                unknown = sorted({p for p in permissions if p.split(".")[1] not in access.ACTIONS})
                if unknown:
                    ctx.error(
                        f"{entry.where}.permissions",
                        _("unknown actions: %(values)s") % {"values": ", ".join(unknown)},
                    )
                values["permissions"] = sorted(set(permissions))
        if "field_permissions" in values:
            levels = values["field_permissions"]
            shape_ok = isinstance(levels, dict) and all(
                isinstance(rt, str) and isinstance(fields, dict) for rt, fields in levels.items()
            )
            if not shape_ok:
                ctx.error(
                    f"{entry.where}.field_permissions",
                    _('must be an object like {"customer": {"phone": "readonly"}}'),
                )
                return
            for rt, fields in levels.items():
                for name, level in fields.items():
                    if level not in FieldAccess.values:
                        ctx.error(
                            f"{entry.where}.field_permissions.{rt}.{name}",
                            _("unknown access “%(value)s”; use one of: %(choices)s")
                            % {"value": level, "choices": ", ".join(FieldAccess.values)},
                        )


# --- The registry ------------------------------------------------------------------------

_sections: dict[str, Section] = {}


def register_section(section: Section) -> None:
    """Add a part of the configuration file (pipelines, rules...); sections are exported
    and imported in `order`, so a section may refer to what an earlier one created."""
    _sections[section.key] = section


def sections() -> list[Section]:
    return sorted(_sections.values(), key=lambda s: s.order)


for _section in (DictionarySection(), CustomFieldSection(), RoleSection()):
    register_section(_section)


# --- Export and import -------------------------------------------------------------------


def export_config() -> dict[str, Any]:
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    for section in sections():
        data[section.key] = section.export()
    return data


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n"


class _Rollback(Exception):
    pass


def _forget_caches() -> None:
    """Caches filled inside a rolled-back transaction must not outlive it."""
    from ..fields import schema

    schema.forget_custom_fields()


def import_config(data: Any, *, dry_run: bool = False, user=None) -> ImportResult:
    """Create or update the configuration in `data` (a parsed file); raises
    ConfigFileError listing every problem, having changed nothing."""
    result = ImportResult(dry_run=dry_run)
    if not isinstance(data, dict):
        raise ConfigFileError([_("The file must hold a JSON object.")])
    ctx = Context(data, result)
    if data.get("format", FORMAT) != FORMAT:
        ctx.error(
            "format", _("not a configuration file (expected “%(format)s”)") % {"format": FORMAT}
        )
    version = data.get("version", VERSION)
    if not isinstance(version, int) or version > VERSION:
        ctx.error("version", _("made by a newer version of the CRM (%(v)s)") % {"v": version})
    known = {s.key for s in sections()}
    for name in sorted(set(data) - known - {"format", "version"}):
        ctx.error(
            name,
            _("unknown section; this system knows: %(names)s")
            % {"names": ", ".join(sorted(known))},
        )

    checked = [(s, s.check(data[s.key], ctx)) for s in sections() if s.key in data]
    if ctx.errors:
        raise ConfigFileError(ctx.errors)

    try:
        with transaction.atomic(), acting_as(user, SOURCE):
            for section, entries in checked:
                section.apply(entries, ctx)
            if ctx.errors:
                raise _Rollback
            for section, entries in checked:
                in_file = {e.key for e in entries}
                extra = [k for k in section.keys_in_system() if k not in in_file]
                if extra:
                    result.not_in_file[section.key] = extra
            if dry_run:
                raise _Rollback
    except _Rollback:
        _forget_caches()
        if ctx.errors:
            raise ConfigFileError(ctx.errors) from None
    return result
