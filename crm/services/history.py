"""Change history and record events: snapshot a record's fields before and after a
write, keep the diff as people read it and as raw values, in one row per change.

That row (`Change`) is both the history entry the pages show and the record's event
in the outbox (crm/events.py): there is one truth of what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts import access
from accounts.actors import actor_of, automation_depth
from accounts.models import DataScope

from .. import bulk, events
from ..fields import schema
from ..fields import values as values_module
from ..models import Change, ChangeAction, Customer, EventKind

# Fields nobody edits by hand: never part of a diff.
UNTRACKED = {"id", "created_at", "updated_at", "created_by", "custom"}


def display_value(value: Any) -> str:
    """A value as history shows it (and an import's preview): local time to the minute,
    ISO dates, ✓/✗, lists joined with 、."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set)):
        return "、".join(sorted(str(v) for v in value))
    return str(value)


def raw(value: Any) -> Any:
    """A value as JSON keeps it exactly: ids, codes, ISO dates (datetimes in UTC),
    decimals as strings (no float rounding)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (list, tuple, set)):
        return [raw(v) for v in value]
    return value


@dataclass
class Snapshot:
    """A record's editable values: as people read them (keyed by field, custom.<key>)
    and raw (keyed by field name, cf_<key>)."""

    display: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class Changes:
    """What a write changed: `display` rows for the history page, `raw` {name: [old,
    new]} for conditions and payloads. False when nothing changed."""

    display: list[dict[str, str]] = field(default_factory=list)
    raw: dict[str, list[Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.display or self.raw)

    @classmethod
    def one(cls, name: str, old: Any, new: Any, *, old_text: str, new_text: str) -> Changes:
        """A single field's change (a transfer, a status), given both ways."""
        return cls(
            display=[{"field": name, "old": old_text, "new": new_text}],
            raw={name: [raw(old), raw(new)]},
        )

    def with_raw(self, name: str, old: Any, new: Any) -> Changes:
        """The same change plus a raw-only entry (e.g. the ids merged in)."""
        return Changes(display=self.display, raw={**self.raw, name: [raw(old), raw(new)]})


def snapshot(
    instance: models.Model,
    only: Iterable[str] | None = None,
    *,
    display: bool = True,
    like: models.Model | None = None,
) -> Snapshot:
    """The record's editable values; with `only`, just those fields ("cf_<key>" for a
    custom one): a write that touches a few fields need not read every related row.
    `display=False`: raw values only (no related row is read for its name). `like`: the
    same record as read before the write; a related row it has loaded and the write kept
    is named from it instead of being read again."""
    wanted = set(only) if only is not None else None
    shot = Snapshot()
    if not display:
        return _raw_snapshot(instance, wanted, shot)
    for model_field in instance._meta.get_fields():
        name = model_field.name
        if name in UNTRACKED or model_field.auto_created or not model_field.concrete:
            continue
        if wanted is not None and name not in wanted:
            continue
        if model_field.many_to_many:
            if instance.pk:
                related = list(getattr(instance, name).all())
                shot.display[name] = display_value([str(o) for o in related])
                shot.raw[name] = sorted(o.pk for o in related)
            continue
        if model_field.is_relation:
            related_id = getattr(instance, model_field.attname)
            shot.raw[name] = related_id
            if display:
                source = instance
                if (
                    like is not None
                    and not model_field.is_cached(instance)
                    and model_field.is_cached(like)
                    and getattr(like, model_field.attname) == related_id
                ):
                    source = like
                shot.display[name] = display_value(getattr(source, name) if related_id else None)
        elif model_field.choices:
            shot.display[name] = display_value(getattr(instance, f"get_{name}_display")())
            shot.raw[name] = raw(getattr(instance, model_field.attname))
        else:
            value = getattr(instance, model_field.attname)
            shot.display[name] = display_value(value)
            shot.raw[name] = raw(value)
    record_type = getattr(instance, "record_type", "")
    for key, value in (getattr(instance, "custom", None) or {}).items():
        if wanted is not None and f"cf_{key}" not in wanted:
            continue
        shot.raw[f"cf_{key}"] = raw(value)
        if display:
            shot.display[f"custom.{key}"] = display_value(
                values_module.history_display(record_type, key, value)
            )
    return shot


_RAW_FIELDS: dict[type, tuple[list[tuple[str, str]], list[str]]] = {}


def _raw_fields(model: type[models.Model]) -> tuple[list[tuple[str, str]], list[str]]:
    """The tracked fields of `model`: (name, attname) of the plain ones, names of the
    many-to-many ones (worked out once per model: an import snapshots every new row)."""
    if model not in _RAW_FIELDS:
        plain, many = [], []
        for model_field in model._meta.get_fields():
            name = model_field.name
            if name in UNTRACKED or model_field.auto_created or not model_field.concrete:
                continue
            if model_field.many_to_many:
                many.append(name)
            else:
                plain.append((name, model_field.attname))
        _RAW_FIELDS[model] = (plain, many)
    return _RAW_FIELDS[model]


def _raw_snapshot(instance: models.Model, wanted: set[str] | None, shot: Snapshot) -> Snapshot:
    """`snapshot(display=False)`: the same raw values, without the display texts."""
    plain, many = _raw_fields(type(instance))
    for name, attname in plain:
        if wanted is None or name in wanted:
            shot.raw[name] = raw(getattr(instance, attname))
    if instance.pk:
        for name in many:
            if wanted is None or name in wanted:
                shot.raw[name] = sorted(o.pk for o in getattr(instance, name).all())
    for key, value in (getattr(instance, "custom", None) or {}).items():
        if wanted is None or f"cf_{key}" in wanted:
            shot.raw[f"cf_{key}"] = raw(value)
    return shot


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def diff(before: Snapshot, after: Snapshot) -> Changes:
    display = [
        {"field": key, "old": before.display.get(key, ""), "new": after.display.get(key, "")}
        for key in dict.fromkeys([*before.display, *after.display])
        if before.display.get(key, "") != after.display.get(key, "")
    ]
    raw_changes = {}
    for key in dict.fromkeys([*before.raw, *after.raw]):
        old, new = before.raw.get(key), after.raw.get(key)
        if old != new and not (_empty(old) and _empty(new)):
            raw_changes[key] = [old, new]
    return Changes(display=display, raw=raw_changes)


def created(instance: models.Model) -> Changes:
    """A new record's values as raw changes from nothing (history shows "created")."""
    values = snapshot(instance, display=False).raw
    return Changes(raw={k: [None, v] for k, v in values.items() if not _empty(v)})


# Events of a record that did not exist before: their values are all new.
NEW_RECORD = {EventKind.CREATED, EventKind.ACTIVITY_LOGGED}

# Which history action a kind of event shows as.
ACTION_OF = {
    EventKind.CREATED: ChangeAction.CREATED,
    EventKind.TRANSFERRED: ChangeAction.TRANSFERRED,
    EventKind.CLAIMED: ChangeAction.CLAIMED,
    EventKind.RELEASED: ChangeAction.RELEASED,
    EventKind.TAGGED: ChangeAction.TAGGED,
    EventKind.MERGED: ChangeAction.MERGED,
    EventKind.DELETED: ChangeAction.DELETED,
}


def _event(
    instance: models.Model,
    *,
    by,
    kind: str,
    changes: Changes,
    note: str,
    customer_id: int | None,
    now: datetime,
    listened: bool | None = None,
) -> Change:
    actor = actor_of(by)
    if listened is None:
        listened = events.has_subscribers()
    return Change(
        record_type=ContentType.objects.get_for_model(instance),
        record_id=instance.pk,
        customer_id=customer_id,
        action=ACTION_OF.get(kind, ChangeAction.UPDATED),
        kind=kind,
        changes=changes.display,
        fields=changes.raw,
        note=note[:300],
        user=by if by is not None and by.pk else None,
        actor_type=actor.kind if actor else "",
        actor_id=actor.id if actor else None,
        actor_name=(actor.name if actor else "")[:200],
        created_at=now,
        automation_depth=automation_depth(by),
        # Nobody to hand it to: delivered as written, no message sent.
        delivered_at=None if listened else now,
    )


def _history_customer(instance: models.Model) -> int | None:
    if isinstance(instance, Customer):
        return instance.pk
    return getattr(instance, "customer_id", None)


def record_change(
    instance: models.Model,
    *,
    by,
    kind: str = EventKind.UPDATED,
    changes: Changes | None = None,
    note: str = "",
    in_history: bool = True,
) -> Change | None:
    """Write the record's event (and history entry) for one change; an update that
    changed nothing writes nothing. `in_history=False`: an event the history pages do
    not list (a follow-up shows in the timeline instead)."""
    changes = changes if changes is not None else Changes()
    if kind in NEW_RECORD and not changes:
        changes = created(instance)
    elif kind == EventKind.UPDATED and not changes:
        return None
    event = _event(
        instance,
        by=by,
        kind=kind,
        changes=changes,
        note=note,
        customer_id=_history_customer(instance) if in_history else None,
        now=timezone.now(),
    )
    if not bulk.defer(event):  # a unit of work inserting its rows together (crm.bulk)
        event.save()
    events.dispatch_on_commit([event])
    return event


def record_changes(
    instances: Sequence[models.Model],
    *,
    by,
    kind: str,
    changes: Sequence[Changes],
    note: str = "",
) -> list[Change]:
    """One event per record of a bulk write (transfer, release, tag...), in one insert."""
    now = timezone.now()
    listened = events.has_subscribers()
    rows = [
        _event(
            instance,
            by=by,
            kind=kind,
            changes=change,
            note=note,
            customer_id=_history_customer(instance),
            now=now,
            listened=listened,
        )
        for instance, change in zip(instances, changes, strict=True)
    ]
    bulk.insert(Change, rows)
    events.dispatch_on_commit(rows)
    return rows


def record_deletions(instances: Sequence[models.Model], *, by, note: str = "") -> list[Change]:
    """The "deleted" event of each record about to be deleted (an undone import's new
    records), in one insert. A deleted customer's own history goes with it, so its
    event belongs to no customer's history; a contact's stays in its customer's."""
    now = timezone.now()
    rows = Change.objects.bulk_create(
        _event(
            instance,
            by=by,
            kind=EventKind.DELETED,
            changes=Changes(),
            note=note,
            customer_id=None if isinstance(instance, Customer) else _history_customer(instance),
            now=now,
        )
        for instance in instances
    )
    events.dispatch_on_commit(rows)
    return rows


def readable_changes(user) -> Q:
    """The change rows of a customer's history the user may read, the customer being
    visible to them: its own rows (also those of customers merged into it), and a
    contact's, task's, deal's... only while the user may see that record by its own
    type's rules, for a deal or a task may stay with its owner when the customer goes to
    a colleague or the pool. Each record type comes from the access registry, so crm
    needs no import of the apps that own them.

    A record deleted since cannot be checked: its rows show only to readers who see
    every record of its type (scope all), not to those whose scope it might have been
    outside of. The check is a correlated EXISTS on the record's primary key, so its
    cost follows the history rows read, not the size of the user's scope."""
    customer_type = ContentType.objects.get_for_model(Customer)
    condition = Q(record_type=customer_type)
    everything = access.data_scope(user) == DataScope.ALL
    for record_type in access.record_types():
        if record_type.model is Customer or not access.has_permission(
            user, record_type.key, "view"
        ):
            continue
        content_type = ContentType.objects.get_for_model(record_type.model)
        if everything:
            condition |= Q(record_type=content_type)
            continue
        visible = access.scope_queryset(record_type.model._default_manager.all(), user)
        condition |= Q(Exists(visible.filter(pk=OuterRef("record_id"))), record_type=content_type)
    return condition


def field_label(model: type[models.Model], key: str) -> str:
    """The label of a history key, in the reader's language."""
    if key.startswith("custom."):
        custom_key = key.removeprefix("custom.")
        record_type = getattr(model, "record_type", "")
        for cf in schema.custom_fields(record_type, active=False):
            if cf.key == custom_key:
                return cf.display_label
        return custom_key
    try:
        return str(model._meta.get_field(key).verbose_name)
    except Exception:
        return key
