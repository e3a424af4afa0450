"""The configuration document: the whole configuration on one readable, printable admin
page — every dictionary and its items, every custom field with its meaning and rules,
every role with its data scope, permissions and field permissions, and the latest
configuration changes. Sections of later apps (pipelines, rules) plug in with
`register_document_section`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Prefetch
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import access
from accounts.models import FieldAccess, Role

from ..models import (
    ConfigChange,
    CustomField,
    CustomFieldRecordType,
    Dictionary,
    DictionaryItem,
    FieldType,
)
from .log import object_text, plain_decimal, readable_changes, source_label

LATEST_CHANGES = 30
SWATCH = re.compile(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20}")


@dataclass(frozen=True)
class DocumentSection:
    """A part of the document from another app: `template` is rendered with the
    context `build()` returns, under the heading `title` (anchor `key`)."""

    key: str
    title: Any
    template: str
    build: Callable[[], dict[str, Any]]
    order: int = 100


_sections: list[DocumentSection] = []


def register_document_section(section: DocumentSection) -> None:
    _sections[:] = [s for s in _sections if s.key != section.key] + [section]
    _sections.sort(key=lambda s: s.order)


# --- Custom fields ---------------------------------------------------------------------


def field_rules(cf: CustomField) -> list[str]:
    """The rules a value of `cf` must follow, as sentences (the pattern is shown apart,
    with its message)."""
    rules = []
    if cf.required:
        rules.append(_("Required."))
    if cf.unique:
        rules.append(_("Unique: no two records may hold the same value."))
    if cf.max_length:
        rules.append(_("At most %(n)s characters.") % {"n": cf.max_length})
    if cf.min_value is not None:
        rules.append(_("At least %(n)s.") % {"n": plain_decimal(cf.min_value)})
    if cf.max_value is not None:
        rules.append(_("At most %(n)s.") % {"n": plain_decimal(cf.max_value)})
    if cf.field_type == FieldType.MULTI_CHOICE:
        rules.append(_("Any number of choices."))
    return rules


def _custom_field_groups() -> list[dict[str, Any]]:
    fields = CustomField.objects.select_related("dictionary").order_by("record_type", "order", "id")
    by_type: dict[str, list[CustomField]] = {}
    for cf in fields:
        cf.rules = field_rules(cf)
        by_type.setdefault(cf.record_type, []).append(cf)
    groups = []
    for value, label in CustomFieldRecordType.choices:
        groups.append({"key": value, "label": label, "fields": by_type.pop(value, [])})
    for value, rows in by_type.items():  # a record type no longer offered
        groups.append({"key": value, "label": value, "fields": rows})
    return groups


# --- Roles -----------------------------------------------------------------------------


def _role_rows() -> list[dict[str, Any]]:
    record_types = access.record_types()
    actions = list(access.ACTIONS)
    levels = dict(FieldAccess.choices)
    labels_by_type = {rt: dict(access.field_names(rt)) for rt in access.field_record_types()}
    type_labels = {rt.key: rt.label for rt in record_types}
    type_labels.update(dict(CustomFieldRecordType.choices))
    rows = []
    for role in Role.objects.annotate(_users=Count("users")).order_by("name"):
        granted = role.permission_set
        matrix = [
            {
                "label": rt.label,
                "cells": [f"{rt.key}.{action}" in granted for action in actions],
            }
            for rt in record_types
        ]
        known = {f"{rt.key}.{a}" for rt in record_types for a in actions}
        field_groups = []
        for record_type, entries in sorted((role.field_permissions or {}).items()):
            names = labels_by_type.get(record_type, {})
            field_groups.append(
                {
                    "label": type_labels.get(record_type, record_type),
                    "fields": [
                        {
                            "name": name,
                            "label": names.get(name) or name,
                            "known": name in names,
                            "level": level,
                            "level_label": levels.get(level, level),
                        }
                        for name, level in sorted(entries.items())
                    ],
                }
            )
        rows.append(
            {
                "role": role,
                "users": role._users,
                "matrix": matrix,
                "other_permissions": sorted(p for p in granted if p not in known),
                "field_groups": field_groups,
            }
        )
    return rows


# --- The page --------------------------------------------------------------------------


def document_context() -> dict[str, Any]:
    items = DictionaryItem.objects.order_by("order", "code")
    dictionaries = list(
        Dictionary.objects.order_by("code").prefetch_related(
            Prefetch("items", queryset=items),
            Prefetch("custom_fields", queryset=CustomField.objects.order_by("record_type", "key")),
        )
    )
    for dictionary in dictionaries:
        for item in dictionary.items.all():
            # Only a plain colour name or hex code goes into the swatch's style.
            item.swatch = item.color if SWATCH.fullmatch(item.color or "") else ""
    changes = list(ConfigChange.objects.select_related("user")[:LATEST_CHANGES])
    for change in changes:
        change.readable = readable_changes(change)
        change.source_text = source_label(change.source)
        change.object_text = object_text(change)
    extra = [{"section": section, "context": section.build()} for section in _sections]
    return {
        "dictionaries": dictionaries,
        "field_groups": _custom_field_groups(),
        "roles": _role_rows(),
        "actions": list(access.ACTIONS.values()),
        "changes": changes,
        "extra_sections": extra,
        "generated_at": timezone.now(),
    }


def document_view(request, admin_site):
    context = {
        **admin_site.each_context(request),
        "title": gettext_lazy("Configuration document"),
        **document_context(),
    }
    return TemplateResponse(request, "admin/config/document.html", context)
