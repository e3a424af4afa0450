"""Change history: snapshot a record's fields before and after a write, keep the diff."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts import access
from accounts.models import DataScope

from ..fields import schema
from ..fields import values as values_module
from ..models import Change, ChangeAction, Customer

# Fields nobody edits by hand: never part of a diff.
UNTRACKED = {"id", "created_at", "updated_at", "created_by", "custom"}


def _display(value: Any) -> str:
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


def snapshot(instance: models.Model, only: Iterable[str] | None = None) -> dict[str, str]:
    """The record's editable values as people read them, keyed by field (custom.<key>);
    with `only`, just those fields ("cf_<key>" for a custom one): a write that touches a
    few fields need not read every related row."""
    wanted = set(only) if only is not None else None
    values: dict[str, str] = {}
    for field in instance._meta.get_fields():
        if field.name in UNTRACKED or field.auto_created or not field.concrete:
            continue
        if wanted is not None and field.name not in wanted:
            continue
        if field.many_to_many:
            if instance.pk:
                values[field.name] = _display([str(o) for o in getattr(instance, field.name).all()])
            continue
        if field.is_relation:
            related_id = getattr(instance, field.attname)
            values[field.name] = _display(getattr(instance, field.name) if related_id else None)
        elif field.choices:
            values[field.name] = _display(getattr(instance, f"get_{field.name}_display")())
        else:
            values[field.name] = _display(getattr(instance, field.attname))
    record_type = getattr(instance, "record_type", "")
    for key, value in (getattr(instance, "custom", None) or {}).items():
        if wanted is not None and f"cf_{key}" not in wanted:
            continue
        values[f"custom.{key}"] = _display(values_module.history_display(record_type, key, value))
    return values


def diff(before: dict[str, str], after: dict[str, str]) -> list[dict[str, str]]:
    return [
        {"field": key, "old": before.get(key, ""), "new": after.get(key, "")}
        for key in dict.fromkeys([*before, *after])
        if before.get(key, "") != after.get(key, "")
    ]


def record_change(
    instance: models.Model,
    *,
    by,
    action: str = ChangeAction.UPDATED,
    changes: list[dict[str, str]] | None = None,
    note: str = "",
) -> Change | None:
    """Write one history entry; an update that changed nothing writes nothing."""
    if action == ChangeAction.UPDATED and not changes:
        return None
    customer_id = (
        instance.pk if isinstance(instance, Customer) else getattr(instance, "customer_id", None)
    )
    return Change.objects.create(
        record_type=ContentType.objects.get_for_model(instance),
        record_id=instance.pk,
        customer_id=customer_id,
        action=action,
        changes=changes or [],
        note=note[:300],
        user=by,
    )


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
