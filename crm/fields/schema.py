"""Which fields a record type has — standard and custom — and which of them a user may
edit, only read, or not see. Forms, detail pages, list columns, filters and exports are
built from here, so a field permission is applied once (DESIGN rule 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.apps import apps
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils.text import capfirst

from accounts import access
from accounts.models import FieldAccess

from ..models import CustomField
from ..process_copy import ProcessCopy

# The version of the custom field definitions in the shared cache: a change sets a new one,
# and each process reloads its copy when the version it holds is not the current one.
VERSION_KEY = "crm:custom-fields:version"
# Without a shared cache (`make run` without Redis: each process its own), a process
# sees another's change within this time.
COPY_SECONDS = 60
_definitions = ProcessCopy(
    VERSION_KEY,
    lambda: list(CustomField.objects.order_by("record_type", "order", "id")),
    seconds=COPY_SECONDS,
)

# The standard fields a role's field permissions may restrict, per record type: (app
# label, model name, field names), filled by register_record_type from each type's
# RecordTypeSpec (crm.records). The name (and the record's owner) always show: they
# identify the record.
STANDARD_FIELDS: dict[str, tuple[str, str, list[str]]] = {}


# Set inside `pinned()`: the definitions read once for a unit of work.
_pinned: ContextVar[list[CustomField] | None] = ContextVar("custom_fields_pinned", default=None)


@contextmanager
def pinned() -> Iterator[None]:
    """Read the definitions once for everything inside (a worker's message of events):
    each `all_custom_fields()` call in it skips the version read. A definition changed
    inside it is seen by the calls after the change."""
    token = _pinned.set(all_custom_fields())
    try:
        yield
    finally:
        _pinned.reset(token)


def all_custom_fields() -> list[CustomField]:
    """Every custom field definition (active or not), loaded once per process and again
    after one changes.

    Each call reads only the small version key: the definitions were a pickled list in
    the cache, and unpickling every model on each call cost 4-11% of a list request's
    time under load. The rows are shared by the process's requests: read them, do not
    change them."""
    held_rows = _pinned.get()
    if held_rows is not None:
        return held_rows
    return _definitions.get()


def custom_fields(record_type: str, *, active: bool = True) -> list[CustomField]:
    return [
        cf
        for cf in all_custom_fields()
        if cf.record_type == record_type and (cf.is_active or not active)
    ]


@receiver([post_save, post_delete], sender=CustomField)
def _forget_custom_fields(**kwargs) -> None:
    # Now for this transaction's own reads, and again once committed: a read in between
    # (another request) may have cached the old list.
    forget_custom_fields()
    transaction.on_commit(forget_custom_fields)


def forget_custom_fields() -> None:
    """Every process reloads the definitions on its next read (after a change, or a
    transaction that read changed ones rolled back)."""
    if _pinned.get() is not None:
        _pinned.set(None)
    _definitions.forget()


@dataclass(frozen=True)
class FieldSpec:
    name: str  # model field name, or "cf_<key>"
    label: str
    access: str  # FieldAccess value for the user asking
    custom: CustomField | None = None

    @property
    def editable(self) -> bool:
        return self.access == FieldAccess.EDITABLE


def standard_field_names(record_type: str) -> list[str]:
    return STANDARD_FIELDS.get(record_type, ("", "", []))[2]


def standard_label(record_type: str, name: str) -> str:
    app_label, model_name, _names = STANDARD_FIELDS[record_type]
    model = apps.get_model(app_label, model_name)
    return str(capfirst(model._meta.get_field(name).verbose_name))


def field_choices(record_type: str) -> list[tuple[str, str]]:
    """(name, label) of every field a field permission may name (the role admin lists
    them; inactive custom fields too, so a permission survives a field's pause)."""
    choices = [
        (name, standard_label(record_type, name)) for name in standard_field_names(record_type)
    ]
    choices += [(cf.name, cf.display_label) for cf in custom_fields(record_type, active=False)]
    return choices


def specs(user, record_type: str, *, include_hidden: bool = False) -> list[FieldSpec]:
    """The restrictable standard fields and the active custom fields, each with the
    user's access; hidden ones left out unless asked for."""
    hidden = access.hidden_fields(user, record_type)
    readonly = access.readonly_fields(user, record_type)

    def level(name: str) -> str:
        if name in hidden:
            return FieldAccess.HIDDEN
        return FieldAccess.READONLY if name in readonly else FieldAccess.EDITABLE

    result = [
        FieldSpec(name, standard_label(record_type, name), level(name))
        for name in standard_field_names(record_type)
    ]
    result += [
        FieldSpec(cf.name, cf.display_label, level(cf.name), cf)
        for cf in custom_fields(record_type)
    ]
    if not include_hidden:
        result = [spec for spec in result if spec.access != FieldAccess.HIDDEN]
    return result


def custom_specs(user, record_type: str) -> list[FieldSpec]:
    """The active custom fields the user may see, in the admin's order."""
    return [spec for spec in specs(user, record_type) if spec.custom is not None]


def register_record_type(
    record_type: str,
    app_label: str,
    model_name: str,
    standard: list[str],
    *,
    custom_fields: bool = True,
) -> None:
    """Give a record type field permissions and, with `custom_fields`, custom fields:
    its restrictable standard fields, the model whose `custom` JSON holds the values
    (its indexes follow the admins' changes), and the field list the role admin offers.
    Called by crm.records.register_record_type from the type's spec."""
    from . import indexes

    STANDARD_FIELDS[record_type] = (app_label, model_name, standard)
    if custom_fields:
        indexes.register_model(record_type, app_label, model_name)
    access.register_fields(record_type, lambda: field_choices(record_type))


class HiddenFields:
    """`hidden.<record type>` in templates: the fields the user may not see, e.g.
    {% if "phone" not in hidden.customer %} (no query: the role is loaded)."""

    def __init__(self, user):
        self.user = user
        self._cache: dict[str, frozenset[str]] = {}

    def __getitem__(self, record_type: str) -> frozenset[str]:
        if record_type not in self._cache:
            self._cache[record_type] = access.hidden_fields(self.user, record_type)
        return self._cache[record_type]


def field_visibility(request) -> dict:
    """Context processor: every template can ask which fields are hidden."""
    return {"hidden": HiddenFields(getattr(request, "user", None))}
