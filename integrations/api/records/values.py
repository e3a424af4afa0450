"""A record's fields in and out of JSON, for every record type alike (DESIGN rules 2 and 5).

Out (`Representer`): the spec's standard fields the user may see (hidden ones are left
out), dictionary items as {"code", "label"}, people as their id plus `<field>_name`,
other relations as ids, tags as names, decimals as strings, datetimes in ISO 8601, and
the custom fields the user may see as `custom`, keyed by the custom field's key, in their
stored form (crm.fields.types: codes for choices, user ids, decimals as strings).

In (`parse_write`): a JSON object of raw values. A field the request may not set is
refused, never ignored: unknown, read-only by nature (a stage: the `move` action), or
read-only or hidden for the user's role. Each value goes through
`crm.fields.coerce.coerce_value` — the path imports and automation use — and the
service then runs the model's own validation (`full_clean`) and `check_custom`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from accounts import access
from accounts.models import User
from crm.fields import coerce, schema
from crm.filters import dictionary_items
from crm.models import CustomField, DictionaryItem

from .specs import ApiSpec

NON_FIELD = "non_field_errors"
CUSTOM = "custom"
# Fields that answer with the person's name beside the id (`owner_name`).
NAMED_PEOPLE = ("owner", "assignee", "author")

_DATETIME = serializers.DateTimeField()
_UTC_DATETIME = serializers.DateTimeField(default_timezone=UTC)
_DATE = serializers.DateField()


def datetime_text(value: datetime) -> str:
    """ISO 8601 in the current time zone — but an instant whose offset there is not whole
    minutes (Asia/Shanghai before 1901: local mean time, +08:05:43) in UTC, as RFC 3339's
    date-time cannot write seconds in an offset."""
    text = _DATETIME.to_representation(value)
    offset = timezone.localtime(value).utcoffset() if timezone.is_aware(value) else None
    if offset is not None and (offset.seconds % 60 or offset.microseconds):
        return _UTC_DATETIME.to_representation(value)
    return text


def kind_of(model_field: models.Field) -> str:
    """How a model field travels in JSON."""
    if model_field.many_to_many:
        return "tags"
    if isinstance(model_field, models.ForeignKey):
        related = model_field.related_model
        if related is DictionaryItem:
            return "dictionary"
        if related is User:
            return "user"
        if related is ContentType:
            return "record_type"
        return "record"
    if isinstance(model_field, models.DateTimeField):
        return "datetime"
    if isinstance(model_field, models.DateField):
        return "date"
    if isinstance(model_field, models.DecimalField):
        return "decimal"
    return "plain"


def dictionary_value(item: DictionaryItem | None) -> dict[str, str] | None:
    return None if item is None else {"code": item.code, "label": str(item)}


def _record_type_of(content_type_id: int | None) -> str | None:
    if content_type_id is None:
        return None
    model = ContentType.objects.get_for_id(content_type_id).model_class()
    try:
        return access.record_type_for(model).key
    except LookupError:
        return None


class Representer:
    """Turns records of one type into JSON for one request (its user's field permissions,
    the request's one load of dictionary items)."""

    def __init__(self, spec: ApiSpec, request):
        self.spec = spec
        self.request = request
        user = request.user
        model = spec.model
        hidden = access.hidden_fields(user, spec.key)
        self.fields = [
            (name, model._meta.get_field(name)) for name in spec.fields if name not in hidden
        ]
        self.kinds = {name: kind_of(f) for name, f in self.fields}
        self.custom = (
            [s.custom for s in schema.custom_specs(user, spec.key)] if spec.has_custom else None
        )

    def items(self) -> dict[int, DictionaryItem]:
        return dictionary_items(getattr(self.request, "_request", self.request))

    def __call__(self, record: models.Model) -> dict[str, Any]:
        data: dict[str, Any] = {"id": record.pk}
        for name, model_field in self.fields:
            kind = self.kinds[name]
            if kind == "dictionary":
                item_id = getattr(record, model_field.attname)
                data[name] = dictionary_value(self.items().get(item_id) if item_id else None)
            elif kind == "user":
                data[name] = getattr(record, model_field.attname)
                if name in NAMED_PEOPLE:
                    person = getattr(record, name) if data[name] else None
                    data[f"{name}_name"] = (
                        (person.get_full_name() or person.get_username()) if person else None
                    )
            elif kind == "record":
                data[name] = getattr(record, model_field.attname)
                if name == "stage":
                    stage = record.stage if record.stage_id else None
                    data["stage_name"] = stage.display_name if stage else None
            elif kind == "record_type":
                data[name] = _record_type_of(getattr(record, model_field.attname))
            elif kind == "tags":
                data[name] = sorted(tag.name for tag in getattr(record, name).all())
            elif kind == "datetime":
                value = getattr(record, name)
                data[name] = datetime_text(value) if value else None
            elif kind == "date":
                value = getattr(record, name)
                data[name] = _DATE.to_representation(value) if value else None
            elif kind == "decimal":
                value = getattr(record, name)
                data[name] = None if value is None else str(value)
            else:
                data[name] = getattr(record, name)
        if self.custom is not None:
            stored = record.custom or {}
            data[CUSTOM] = {cf.key: stored.get(cf.key) for cf in self.custom}
        return data


# --- In -------------------------------------------------------------------------------------


@dataclass
class Parsed:
    """A write's coerced values: standard fields by name (model instances for relations,
    tag names for tags), custom values by key (None: remove), and the errors by field."""

    values: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Any] = field(default_factory=dict)


def _refusal(spec: ApiSpec, name: str) -> str:
    reason = spec.refused.get(name)
    if reason == "stage":
        return _("The stage changes only through the move action.")
    if reason == "transfer":
        return _("The owner changes only through the transfer action.")
    if reason == "complete":
        return _("The status changes only through the complete and reopen actions.")
    return _("This field cannot be set.")


def _messages(exc: DjangoValidationError) -> list[str]:
    return [str(message) for message in exc.messages]


def writable_names(spec: ApiSpec, *, creating: bool) -> tuple[str, ...]:
    return (*spec.writable, *(spec.create_only if creating else ()))


def parse_write(
    spec: ApiSpec,
    data: Any,
    user,
    *,
    instance: models.Model | None = None,
    partial: bool = True,
    allowed: tuple[str, ...] | None = None,
) -> Parsed:
    """Coerce a write's JSON object; raises a DRF ValidationError keyed by field (custom
    fields under "custom", by key) with every refusal at once.

    `partial`: fields left out keep their value (PATCH, create); otherwise (PUT) every
    field the user may change that is left out is emptied. `allowed`: the fields this
    write may set (by default the spec's, create-only ones on create)."""
    if not isinstance(data, dict):
        raise ValidationError({NON_FIELD: [_("Send a JSON object of field values.")]})
    creating = instance is None or instance.pk is None
    if allowed is None:
        allowed = writable_names(spec, creating=creating)
    restricted = access.hidden_fields(user, spec.key) | access.readonly_fields(user, spec.key)
    known = {"id", *spec.fields, *spec.writable, *spec.create_only, *spec.refused}
    parsed = Parsed()
    for name in data:
        if name == CUSTOM and spec.has_custom:
            continue
        if name not in allowed:
            if name in known:
                parsed.errors[name] = [_refusal(spec, name)]
            else:
                parsed.errors[name] = [_("Unknown field.")]
        elif name in restricted:
            parsed.errors[name] = [_("Your role may not change this field.")]
    if creating:
        # Left out of a create (a PUT empties them, refused below by the coercion).
        for name in spec.required:
            if name in allowed and name not in data:
                parsed.errors[name] = [_("This field is required.")]
    # In the spec's order: a deal's pipeline is known before its stage is looked up.
    target = instance
    for name in allowed:
        if name in parsed.errors or name in restricted:
            continue
        if name in data:
            raw = data[name]
        elif not partial and not creating:
            raw = None
        else:
            continue
        try:
            value = coerce.coerce_value(spec.key, name, raw, user=user, instance=target)
        except DjangoValidationError as exc:
            parsed.errors[name] = _messages(exc)
            continue
        except LookupError:
            parsed.errors[name] = [_("Unknown field.")]
            continue
        limit = spec.limit_to.get(name)
        current = getattr(instance, f"{name}_id", None) if instance is not None else None
        if (
            limit is not None
            and isinstance(value, models.Model)
            and value.pk != current
            and not limit(user).filter(pk=value.pk).exists()
        ):
            parsed.errors[name] = [
                _("Select a valid choice. That choice is not one of the available choices.")
            ]
            continue
        parsed.values[name] = value
        if name == "pipeline" and value is not None:
            # The stage is then looked up among this pipeline's.
            target = spec.model(pipeline=value)
    if spec.has_custom:
        _parse_custom(spec, data, user, instance, partial, creating, restricted, parsed)
    if parsed.errors:
        raise ValidationError(parsed.errors)
    return parsed


def _parse_custom(spec, data, user, instance, partial, creating, restricted, parsed) -> None:
    raw_custom = data.get(CUSTOM, None if (partial or creating) else {})
    if raw_custom is None:
        if CUSTOM in data:
            parsed.errors[CUSTOM] = [_("Send the custom fields as an object keyed by field key.")]
        return
    if not isinstance(raw_custom, dict):
        parsed.errors[CUSTOM] = [_("Send the custom fields as an object keyed by field key.")]
        return
    fields = {cf.key: cf for cf in schema.custom_fields(spec.key)}
    errors: dict[str, list[str]] = {}
    keys = list(raw_custom)
    if not partial and not creating:
        # PUT: every custom field the user may change and left out is emptied.
        keys += [key for key, cf in fields.items() if key not in raw_custom]
    for key in keys:
        cf: CustomField | None = fields.get(key) if isinstance(key, str) else None
        if cf is None:
            errors[str(key)] = [_("Unknown field.")]
            continue
        if cf.name in restricted:
            if key in raw_custom:
                errors[key] = [_("Your role may not change this field.")]
            continue
        try:
            parsed.custom[key] = coerce.coerce_value(
                spec.key, cf.name, raw_custom.get(key), user=user, instance=instance
            )
        except DjangoValidationError as exc:
            errors[key] = _messages(exc)
    if errors:
        parsed.errors[CUSTOM] = errors


def apply(parsed: Parsed, instance: models.Model) -> dict[str, Any]:
    """Set the coerced values on the record; returns what the service takes besides it
    (tag names, only when the write named them)."""
    extra: dict[str, Any] = {}
    for name, value in parsed.values.items():
        model_field = instance._meta.get_field(name)
        if model_field.many_to_many:
            extra[name] = value
        else:
            setattr(instance, name, value)
    if parsed.custom:
        custom = dict(instance.custom or {})
        for key, value in parsed.custom.items():
            if value is None:
                custom.pop(key, None)
            else:
                custom[key] = value
        instance.custom = custom
    return extra


def service_errors(exc: DjangoValidationError, spec: ApiSpec | None = None) -> ValidationError:
    """A service's (or the model's) ValidationError as the API's 400: under the field it
    names — a custom field's "cf_<key>" under "custom" — else under non_field_errors."""
    if not hasattr(exc, "error_dict"):
        return ValidationError({NON_FIELD: _messages(exc)})
    errors: dict[str, Any] = {}
    for name, field_errors in exc.error_dict.items():
        messages = [str(m) for error in field_errors for m in error.messages]
        if name.startswith("cf_"):
            errors.setdefault(CUSTOM, {})[name.removeprefix("cf_")] = messages
        elif name == "__all__":
            errors.setdefault(NON_FIELD, []).extend(messages)
        else:
            errors[name] = messages
    return ValidationError(errors)
