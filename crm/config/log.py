"""The configuration log: who changed which piece of configuration, when, from what to
what (DESIGN rule 8).

A configuration model registers once with `register_config_model(Model, key_fields=...)`;
from then on every save and delete of it — from the admin, the shell, a management
command or `import_config` — writes a `ConfigChange` row in the same transaction, with
field-level old → new values. Who did it comes from `acting_as(user, source)`: the
middleware sets it for each request, commands wrap their work in it.

    from crm.config.log import register_config_model
    register_config_model(Stage, key_fields=("pipeline.name", "code"))

Values are stored as people read them at the time (a dictionary by its code, a decimal
as text), so later renames do not rewrite history. Auto timestamps are left out.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils.encoding import force_str
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import ConfigChange

# --- Who is acting -----------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    user: Any = None  # a User, a lazy request.user, or None
    source: str = ""

    @property
    def user_id(self) -> int | None:
        user = self.user
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        return user.pk


_actor: ContextVar[Actor | None] = ContextVar("crm_config_actor", default=None)


@contextmanager
def acting_as(user, source: str) -> Iterator[Actor]:
    """Configuration changes inside the block are logged as done by `user` via `source`
    (e.g. "admin", "import_config")."""
    actor = Actor(user, source[:30])
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def default_source() -> str:
    """Outside a request or an `acting_as` block: the management command running, e.g.
    "manage.py shell", else "system"."""
    argv = sys.argv or []
    if len(argv) > 1 and argv[0].endswith(("manage.py", "django-admin")):
        return f"manage.py {argv[1]}"[:30]
    return "system"


def current_actor() -> Actor:
    return _actor.get() or Actor(None, default_source())


# --- The registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigModel:
    model: type[models.Model]
    # Attribute paths naming an object across systems, e.g. ("dictionary.code", "code").
    key_fields: tuple[str, ...]
    exclude: frozenset[str] = field(default_factory=frozenset)
    # (field name, path in a JSON object, value) -> (path as people read it, value text),
    # e.g. a role's field permission "customer.cf_revenue" → "客户 · 年营业额".
    describe: Callable[[str, str, Any], tuple[str, str]] | None = None

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    def natural_key(self, obj: models.Model) -> str:
        return ".".join(force_str(_follow(obj, path)) for path in self.key_fields)

    def logged_fields(self) -> list[models.Field]:
        return [
            f
            for f in self.model._meta.concrete_fields
            if not f.primary_key
            and f.name not in self.exclude
            and not getattr(f, "auto_now", False)
            and not getattr(f, "auto_now_add", False)
        ]


_registry: dict[type[models.Model], ConfigModel] = {}


def register_config_model(
    model: type[models.Model],
    *,
    key_fields: Iterable[str],
    exclude: Iterable[str] = (),
    describe: Callable[[str, str, Any], tuple[str, str]] | None = None,
) -> ConfigModel:
    """Log every save and delete of `model`. `key_fields` name an object the same way on
    every system (never the database id); `exclude` leaves fields out of the diffs;
    `describe` reads entries of JSON-object fields for people."""
    entry = ConfigModel(model, tuple(key_fields), frozenset(exclude), describe)
    _registry[model] = entry
    uid = f"crm.config.log:{entry.label}"
    pre_save.connect(_remember, sender=model, dispatch_uid=uid)
    post_save.connect(_log_save, sender=model, dispatch_uid=uid)
    post_delete.connect(_log_delete, sender=model, dispatch_uid=uid)
    return entry


def unregister_config_model(model: type[models.Model]) -> None:
    entry = _registry.pop(model, None)
    if entry is not None:
        uid = f"crm.config.log:{entry.label}"
        pre_save.disconnect(sender=model, dispatch_uid=uid)
        post_save.disconnect(sender=model, dispatch_uid=uid)
        post_delete.disconnect(sender=model, dispatch_uid=uid)


def config_models() -> list[ConfigModel]:
    return list(_registry.values())


def config_model(model: type[models.Model]) -> ConfigModel | None:
    return _registry.get(model._meta.concrete_model)


def model_for_label(label: str) -> type[models.Model] | None:
    for entry in _registry.values():
        if entry.label == label:
            return entry.model
    return None


# --- Snapshots and diffs -----------------------------------------------------------------


def _follow(obj, path: str):
    for step in path.split("."):
        if obj is None:
            return None
        obj = getattr(obj, step)
    return obj


def plain_decimal(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def plain_value(field: models.Field, value: Any) -> Any:
    """A field's value as JSON people can read: decimals as text without trailing zeros,
    dates in ISO form; JSON fields unchanged."""
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return json.loads(json.dumps(value, default=str))
    if isinstance(field, models.DecimalField):
        value = field.to_python(value)
        return plain_decimal(value) if value is not None else None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bool | int | float | str):
        return value
    return force_str(value)


def _related_value(field: models.ForeignKey, obj: models.Model) -> Any:
    """A foreign key by the related object's natural key (a dictionary by its code), or
    its text when the related model is not configuration."""
    raw_id = getattr(obj, field.attname)
    if raw_id is None:
        return None
    related = getattr(obj, field.name)
    entry = config_model(type(related))
    return entry.natural_key(related) if entry else force_str(related)


def snapshot(obj: models.Model, entry: ConfigModel | None = None) -> dict[str, Any]:
    """{field name: readable value} of every logged field of `obj`."""
    entry = entry or config_model(type(obj)) or ConfigModel(type(obj), ("pk",))
    values = {}
    for f in entry.logged_fields():
        if f.is_relation:
            values[f.name] = _related_value(f, obj)
        else:
            values[f.name] = plain_value(f, getattr(obj, f.attname))
    return values


def diff(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[dict[str, Any]]:
    """[{"field", "old", "new"}] of the values that differ; for a creation (old None)
    or a deletion (new None) every value that is set."""
    old, new = old or {}, new or {}
    changes = []
    for name in dict.fromkeys([*old, *new]):
        before, after = old.get(name), new.get(name)
        if before != after and not (_empty(before) and _empty(after)):
            changes.append({"field": name, "old": before, "new": after})
    return changes


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


# --- The signal receivers ----------------------------------------------------------------


def _remember(sender, instance, raw=False, **kwargs) -> None:
    instance._config_before = None
    if raw or instance.pk is None:
        return
    stored = sender._default_manager.filter(pk=instance.pk).first()
    if stored is not None:
        instance._config_before = snapshot(stored)


def _describe(entry: ConfigModel, obj: models.Model) -> str:
    key, text = entry.natural_key(obj), force_str(obj)
    return (text if key == text else f"{text} ({key})")[:200]


def record(
    obj: models.Model, action: str, changes: list[dict[str, Any]], *, entry=None
) -> ConfigChange:
    entry = entry or config_model(type(obj))
    actor = current_actor()
    return ConfigChange.objects.create(
        user_id=actor.user_id,
        source=actor.source,
        model=entry.label,
        object_id=str(obj.pk),
        object_repr=_describe(entry, obj),
        action=action,
        changes=changes,
    )


def _log_save(sender, instance, created, raw=False, update_fields=None, **kwargs) -> None:
    if raw:
        return
    entry = config_model(sender)
    before = getattr(instance, "_config_before", None)
    after = snapshot(instance, entry)
    if created or before is None:
        record(instance, ConfigChange.Action.CREATE, diff(None, after), entry=entry)
        return
    changes = diff(before, after)
    if update_fields is not None:
        changes = [c for c in changes if c["field"] in update_fields]
    if changes:
        record(instance, ConfigChange.Action.UPDATE, changes, entry=entry)
    instance._config_before = after


def _log_delete(sender, instance, **kwargs) -> None:
    entry = config_model(sender)
    record(instance, ConfigChange.Action.DELETE, diff(snapshot(instance, entry), None), entry=entry)


# --- Reading the log ---------------------------------------------------------------------


def field_label(model: type[models.Model] | None, name: str) -> str:
    if model is None:
        return name
    try:
        return str(capfirst(model._meta.get_field(name).verbose_name))
    except Exception:
        return name


def _readable(model: type[models.Model] | None, name: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if model is not None:
        try:
            f = model._meta.get_field(name)
        except Exception:
            f = None
        if f is not None and f.flatchoices and not isinstance(value, list | dict):
            return force_str(dict(f.flatchoices).get(value, value))
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return force_str(value)


# Where a change came from, as people read it (the stored value is the technical name:
# the middleware's "admin"/"web", a command's "manage.py <name>").
SOURCE_LABELS = {
    "admin": gettext_lazy("Admin site"),
    "web": gettext_lazy("Web pages"),
    "admin import": gettext_lazy("Configuration import (admin site)"),
    "import_config": gettext_lazy("Configuration import"),
    "system": gettext_lazy("System"),
    "shell": gettext_lazy("Command line"),
    "manage.py shell": gettext_lazy("Command line"),
    "manage.py seed_demo": gettext_lazy("Demo data"),
    "manage.py migrate": gettext_lazy("Database upgrade"),
    "manage.py import_config": gettext_lazy("Configuration import"),
    "manage.py loaddata": gettext_lazy("Data load"),
}


def source_label(source: str) -> str:
    """ "Demo data" for "manage.py seed_demo"; a command without a name of its own as
    "Server command"; anything else as stored."""
    if not source:
        return "—"
    label = SOURCE_LABELS.get(source)
    if label is not None:
        return str(label)
    if source.startswith("manage.py "):
        return str(_("Server command"))
    return source


def object_text(change: ConfigChange) -> str:
    """The changed object as people read it: its name, without the natural key the log
    stores after it ("客户 · 微信群", not "客户 · 微信群 (customer.wechat_group)")."""
    text = change.object_repr or ""
    if text.endswith(")") and " (" in text:
        name, key = text[:-1].rsplit(" (", 1)
        if name and key and " " not in key:
            return name
    return text


def readable_changes(change: ConfigChange) -> list[tuple[str, str, str]]:
    """(field label, old, new) as people read them. A JSON object (a role's field
    permissions) or list (its permissions) shows only the entries that changed."""
    model = model_for_label(change.model)
    rows = []
    for item in change.changes or []:
        name, old, new = item.get("field", ""), item.get("old"), item.get("new")
        label = field_label(model, name)
        if isinstance(old, dict | None) and isinstance(new, dict | None) and (old or new):
            entry = config_model(model) if model else None
            for path, before, after in _dict_diff(old or {}, new or {}):
                if entry and entry.describe:
                    shown, before_text = entry.describe(name, path, before)
                    after_text = entry.describe(name, path, after)[1]
                else:
                    shown = path
                    before_text, after_text = (
                        _readable(None, "", before),
                        _readable(None, "", after),
                    )
                rows.append((f"{label}: {shown}", before_text, after_text))
            continue
        if isinstance(old, list | None) and isinstance(new, list | None) and (old or new):
            removed = [v for v in old or [] if v not in (new or [])]
            added = [v for v in new or [] if v not in (old or [])]
            rows.append(
                (
                    label,
                    "、".join(f"− {v}" for v in removed) or "—",
                    "、".join(f"+ {v}" for v in added) or "—",
                )
            )
            continue
        rows.append((label, _readable(model, name, old), _readable(model, name, new)))
    return rows


def _dict_diff(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    rows = []
    for key in sorted(set(old) | set(new), key=str):
        before, after = old.get(key), new.get(key)
        path = f"{prefix}{key}"
        if (
            isinstance(before, dict | None)
            and isinstance(after, dict | None)
            and (isinstance(before, dict) or isinstance(after, dict))
        ):
            rows += _dict_diff(before or {}, after or {}, f"{path}.")
        elif before != after:
            rows.append((path, before, after))
    return rows


# --- The configuration this app owns -----------------------------------------------------


def _register_core() -> None:
    from accounts.models import Role

    from ..models import CustomField, Dictionary, DictionaryItem

    register_config_model(Dictionary, key_fields=("code",))
    register_config_model(DictionaryItem, key_fields=("dictionary.code", "code"))
    register_config_model(CustomField, key_fields=("record_type", "key"))
    register_config_model(Role, key_fields=("name",), describe=_describe_role_entry)


def _describe_role_entry(field_name: str, path: str, value: Any) -> tuple[str, str]:
    """A field permission as "客户 · 年营业额" and "Read-only"."""
    from accounts import access
    from accounts.models import FieldAccess

    from ..models import CustomFieldRecordType

    text = _readable(None, "", value)
    if field_name != "field_permissions" or "." not in path:
        return path, text
    record_type, name = path.split(".", 1)
    type_label = dict(CustomFieldRecordType.choices).get(record_type, record_type)
    field_label_ = dict(access.field_names(record_type)).get(name, name)
    levels = dict(FieldAccess.choices)
    return f"{type_label} · {field_label_}", str(levels.get(value, text))


_register_core()
