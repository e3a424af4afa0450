"""Custom values and field permissions at the service layer: whatever the entry point
(form, import, API, automation), a service keeps only the fields the user may change,
re-checks custom values against their definitions, and turns the database's refusal of
a duplicate unique value into the field's error."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from accounts import access

from . import schema, types
from .types import unique_message

UNIQUE_INDEX = re.compile(r"cf_(?P<rt>[a-z]+)_(?P<key>[a-z][a-z0-9_]*)_uniq")


def enforce_field_access(
    instance: models.Model, *, stored: models.Model | None, by, record_type: str
) -> None:
    """Undo changes to fields `by` may only read or not see: they keep the stored value
    (a new record gets the field's default)."""
    restricted = access.hidden_fields(by, record_type) | access.readonly_fields(by, record_type)
    if not restricted:
        return
    standard = set(schema.standard_field_names(record_type))
    for name in restricted & standard:
        field = instance._meta.get_field(name)
        if field.many_to_many:
            continue  # services handle m2m (tags) themselves
        value = getattr(stored, field.attname) if stored is not None else field.get_default()
        setattr(instance, field.attname, value)
    custom = dict(instance.custom or {})
    before = (stored.custom or {}) if stored is not None else {}
    for cf in schema.custom_fields(record_type, active=False):
        if cf.name in restricted:
            if cf.key in before:
                custom[cf.key] = before[cf.key]
            else:
                custom.pop(cf.key, None)
    instance.custom = custom


def check_custom(instance: models.Model, *, record_type: str, before: dict[str, Any]) -> None:
    """Each changed custom value must be valid for its field (the stored form is run
    through the same validation as typed input)."""
    errors: dict[str, list[str]] = {}
    custom = dict(instance.custom or {})
    for cf in schema.custom_fields(record_type):
        if cf.key not in custom or custom.get(cf.key) == before.get(cf.key):
            continue
        try:
            value = types.clean_value(
                cf, custom[cf.key], required=False, current=before.get(cf.key)
            )
        except ValidationError as exc:
            errors[cf.name] = exc.messages
            continue
        if value is None:
            custom.pop(cf.key)
        else:
            custom[cf.key] = value
    if errors:
        raise ValidationError(errors)
    instance.custom = custom


def save_checking_unique(instance: models.Model, *, record_type: str, **kwargs) -> None:
    """Save; a duplicate value of a unique custom field (also one saved concurrently by
    someone else) becomes that field's error instead of a server error."""
    if not any(cf.unique for cf in schema.custom_fields(record_type)):
        instance.save(**kwargs)  # no unique index to trip over: no savepoint needed
        return
    try:
        with transaction.atomic():
            instance.save(**kwargs)
    except IntegrityError as exc:
        match = UNIQUE_INDEX.search(str(exc))
        if not match or match["rt"] != record_type:
            raise
        cf = next(
            (c for c in schema.custom_fields(record_type, active=False) if c.key == match["key"]),
            None,
        )
        if cf is None:
            raise
        raise ValidationError({cf.name: unique_message(cf)}) from exc


def history_display(record_type: str, key: str, value: Any) -> str:
    """A custom value as the history shows it (labels, not item codes)."""
    cf = next((c for c in schema.custom_fields(record_type, active=False) if c.key == key), None)
    if cf is None:
        return value
    from ..models import DictionaryItem

    items = (
        {
            (i.dictionary_id, i.code): i
            for i in DictionaryItem.objects.filter(dictionary_id=cf.dictionary_id)
        }
        if cf.dictionary_id
        else {}
    )
    users = {}
    if cf.field_type == "user" and isinstance(value, int):
        from accounts.models import User

        users = {u.pk: u for u in User.objects.filter(pk=value)}
    return types.display_value(cf, value, items=items, users=users)
