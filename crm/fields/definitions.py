"""Checks on a custom field's definition that need its values: the default must be a
valid value, a unique field must not already hold duplicates, and a type (or a choice
field's dictionary) may change only when every stored value converts.

A change that is accepted rewrites the stored values into the new type's stored form
(`convert_values`), from a pre_save receiver: inside the admin's transaction, so the
definition and its values are saved together or not at all, and before the index sync
(crm.fields.indexes, post_save) builds expression indexes over the new values — on
PostgreSQL a numeric field's index casts every value, so they must already convert.
Code that changes a field's type outside the admin should save it inside
`transaction.atomic()` too.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import CustomField, FieldType
from . import indexes, types

MAX_LISTED = 20
CHOICE_TYPES = (FieldType.CHOICE, FieldType.MULTI_CHOICE)
BATCH = 500


def check(cf: CustomField) -> None:
    errors: dict[str, list[str]] = {}
    if cf.default:
        try:
            types.clean_value(cf, cf.default, required=False)
        except ValidationError as exc:
            errors["default"] = [
                _("The default is not a valid value: %(error)s") % {"error": " ".join(exc.messages)}
            ]
    if cf.unique and cf.pk and cf.is_active:
        duplicates = indexes.duplicate_values(cf)
        if duplicates:
            errors["unique"] = [
                _("Records already share these values, so the field cannot be unique: %(values)s")
                % {"values": "、".join(duplicates)}
            ]
    old_type = stored_change(cf)
    if old_type is not None:
        messages = conversion_errors(cf, old_type)
        if messages:
            errors.setdefault("field_type", []).extend(messages)
    if errors:
        raise ValidationError(errors)


def stored_change(cf: CustomField) -> str | None:
    """The saved type when the values would need converting (the type changed, or a
    choice field's dictionary did); None otherwise."""
    if not cf.pk:
        return None
    previous = (
        CustomField.objects.filter(pk=cf.pk).values_list("field_type", "dictionary_id").first()
    )
    if previous is None:
        return None
    old_type, old_dictionary = previous
    if old_type != cf.field_type:
        return old_type
    if cf.field_type in CHOICE_TYPES and old_dictionary != cf.dictionary_id:
        return old_type
    return None


def stored_text(old_type: str, new_type: str, stored: Any, *, users: dict | None = None) -> str:
    """A stored value as the text a person would type for it: what the new type parses."""
    if isinstance(stored, list):
        return ", ".join(str(v) for v in stored)
    if isinstance(stored, bool):
        return "true" if stored else "false"
    if old_type == FieldType.DATETIME and isinstance(stored, str):
        try:
            moment = timezone.localtime(datetime.fromisoformat(stored))
        except (ValueError, TypeError):
            return stored
        if new_type == FieldType.DATE:
            return moment.date().isoformat()
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if old_type == FieldType.USER and new_type != FieldType.USER and users is not None:
        return users.get(stored, str(stored))
    return str(stored)


class Plan:
    """What converting the stored values of `cf` from `old_type` gives: the records to
    rewrite and the values that do not convert (text → number of records)."""

    def __init__(self, cf: CustomField, old_type: str):
        self.cf = cf
        self.old_type = old_type
        self.failures: Counter = Counter()
        self.rewrites: list[tuple[Any, dict]] = []  # (record, new custom)
        self.converted: Counter = Counter()
        self.model = indexes.model_for(cf.record_type)
        if self.model is None:
            return
        users = None
        if old_type == FieldType.USER and cf.field_type != FieldType.USER:
            from accounts.models import User

            users = dict(User.objects.values_list("pk", "username"))
        results: dict[str, tuple[bool, Any]] = {}
        rows = (
            self.model._default_manager.filter(custom__has_key=cf.key)
            .only("pk", "custom")
            .order_by("pk")
        )
        for record in rows.iterator(chunk_size=2000):
            stored = (record.custom or {}).get(cf.key)
            if stored is None or stored == "" or stored == []:
                continue
            text = stored_text(old_type, cf.field_type, stored, users=users)
            if text not in results:
                try:
                    results[text] = (
                        True,
                        types.clean_value(cf, text, required=False, include_inactive=True),
                    )
                except ValidationError:
                    results[text] = (False, None)
            ok, value = results[text]
            if not ok:
                self.failures[text] += 1
                continue
            if value is not None:
                self.converted[repr(value)] += 1
            if value != stored or type(value) is not type(stored):
                custom = dict(record.custom)
                if value is None:
                    custom.pop(cf.key, None)
                else:
                    custom[cf.key] = value
                self.rewrites.append((record, custom))

    def duplicates(self) -> list[str]:
        return [value for value, n in self.converted.items() if n > 1]

    def messages(self) -> list[str]:
        messages = []
        if self.failures:
            listed = self.failures.most_common(MAX_LISTED)
            values = "、".join(
                _("“%(value)s” (%(count)d)") % {"value": text, "count": count}
                for text, count in listed
            )
            message = _(
                "The type cannot be changed to %(type)s: these stored values do not "
                "convert (records in brackets): %(values)s"
            ) % {"type": FieldType(self.cf.field_type).label, "values": values}
            more = len(self.failures) - len(listed)
            if more > 0:
                message += " " + _("and %(count)d more values.") % {"count": more}
            messages.append(message)
        if self.cf.unique and self.cf.is_active and self.duplicates():
            messages.append(
                _(
                    "After the change some records would share a value, so the field "
                    "cannot stay unique: %(values)s"
                )
                % {"values": "、".join(self.duplicates()[:MAX_LISTED])}
            )
        return messages


def conversion_errors(cf: CustomField, old_type: str) -> list[str]:
    """Why the stored values of `cf` cannot take its new type (empty: they all can)."""
    return Plan(cf, old_type).messages()


def convert_values(cf: CustomField, old_type: str) -> int:
    """Rewrite every stored value of `cf` into its (new) type's stored form; refuses
    with ValidationError, writing nothing, when any value does not convert. Returns
    how many records were rewritten."""
    plan = Plan(cf, old_type)
    messages = plan.messages()
    if messages:
        raise ValidationError({"field_type": messages})
    records = []
    for record, custom in plan.rewrites:
        record.custom = custom
        records.append(record)
    if records:
        with transaction.atomic():
            plan.model._default_manager.bulk_update(records, ["custom"], batch_size=BATCH)
            if connection.vendor == "postgresql":
                # Run the deferred foreign-key checks the updates queued now: the index
                # sync after the save may not CREATE INDEX on a table with pending ones.
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    return len(records)


@receiver(pre_save, sender=CustomField)
def _convert_before_save(sender, instance: CustomField, raw=False, **kwargs) -> None:
    if raw:
        return
    old_type = stored_change(instance)
    if old_type is not None:
        convert_values(instance, old_type)
