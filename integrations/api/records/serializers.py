"""Serializers built from an `ApiSpec`: one for responses, one for writes, per type.

Their declared fields describe the JSON for the OpenAPI schema (drf-spectacular) and
for the browsable API; the work itself — field permissions, coercion, the custom
object — is `values.Representer` and `values.parse_write`, shared by every type.
"""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, models
from django.utils.text import capfirst
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from crm.fields import schema
from crm.models import FieldType

from . import values
from .specs import ApiSpec


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "properties": {"code": {"type": "string"}, "label": {"type": "string"}},
        "required": ["code", "label"],
    }
)
class DictionaryItemField(serializers.Field):
    """A data-dictionary item: {"code", "label"} in responses."""


@extend_schema_field({"type": "string", "nullable": True})
class DictionaryCodeField(serializers.Field):
    """A data-dictionary item by its code (a label matches too) in writes."""


# Django's email and URL validators take internationalised domains (王芳@例子.中国,
# https://例子.com/产品) and keep them so: "email" and "uri" would be untrue of such a
# value, and drf-spectacular's oneOf of the blank string and "uri" is ambiguous for ""
# to a validator that does not check formats.
IDN_EMAIL = {"type": "string", "format": "idn-email"}
IRI = {"type": "string", "format": "iri"}
BLANK = {"type": "string", "maxLength": 0}


@extend_schema_field({"anyOf": [IDN_EMAIL, BLANK]})
class StoredEmailField(serializers.CharField):
    """An email address as stored (its domain may be in Unicode); "" when none."""


@extend_schema_field({"anyOf": [IRI, BLANK]})
class StoredUrlField(serializers.CharField):
    """A URL as stored (its domain and path may be in Unicode); "" when none."""


class ChoiceValueField(serializers.ChoiceField):
    """A choice by its value; described inline (a lead's, a deal's and a task's status
    share the name but not the values)."""


class ChoiceValueExtension(OpenApiSerializerFieldExtension):
    target_class = ChoiceValueField

    def map_serializer_field(self, auto_schema, direction):
        described = {"type": "string", "enum": [str(value) for value in self.target.choices]}
        if self.target.allow_null:
            described["nullable"] = True
        return described


class CustomValuesField(serializers.Field):
    """The record's custom fields, keyed by key; described by `CustomValuesExtension`
    from the custom fields configured when the schema is generated."""

    def __init__(self, record_type: str, **kwargs):
        self.record_type = record_type
        super().__init__(**kwargs)


_CUSTOM_TYPES: dict[str, dict[str, Any]] = {
    FieldType.TEXT: build_basic_type(OpenApiTypes.STR),
    FieldType.LONG_TEXT: build_basic_type(OpenApiTypes.STR),
    FieldType.EMAIL: IDN_EMAIL,
    FieldType.PHONE: build_basic_type(OpenApiTypes.STR),
    FieldType.URL: IRI,
    FieldType.INTEGER: build_basic_type(OpenApiTypes.INT),
    # Exact, as stored: "1234.50" (a number is accepted on the way in).
    FieldType.DECIMAL: {"type": "string", "format": "decimal"},
    FieldType.MONEY: {"type": "string", "format": "decimal"},
    FieldType.DATE: build_basic_type(OpenApiTypes.DATE),
    FieldType.DATETIME: build_basic_type(OpenApiTypes.DATETIME),
    FieldType.BOOLEAN: build_basic_type(OpenApiTypes.BOOL),
    FieldType.CHOICE: build_basic_type(OpenApiTypes.STR),
    FieldType.MULTI_CHOICE: {"type": "array", "items": build_basic_type(OpenApiTypes.STR)},
    FieldType.USER: build_basic_type(OpenApiTypes.INT),
}


def custom_field_schema(cf) -> dict[str, Any]:
    described = dict(_CUSTOM_TYPES.get(cf.field_type, build_basic_type(OpenApiTypes.STR)))
    described["nullable"] = True
    described["title"] = str(cf.display_label)
    if cf.field_type == FieldType.CHOICE:
        described["description"] = "A dictionary item code."
    elif cf.field_type == FieldType.MULTI_CHOICE:
        described["description"] = "Dictionary item codes."
    elif cf.field_type == FieldType.USER:
        described["description"] = "A user id."
    return described


class CustomValuesExtension(OpenApiSerializerFieldExtension):
    """The `custom` object as the custom fields are configured now."""

    target_class = CustomValuesField

    def map_serializer_field(self, auto_schema, direction):
        try:
            fields = schema.custom_fields(self.target.record_type)
        except DatabaseError:  # no database to read the configuration from (a CI build)
            fields = []
        return {
            "type": "object",
            "description": "Custom fields by key, as configured when this schema was made.",
            "properties": {cf.key: custom_field_schema(cf) for cf in fields},
            "additionalProperties": False,
        }


def _described(
    model_field: models.Field,
    *,
    write: bool,
    name: str,
    help_text: str = "",
    required: bool = False,
) -> serializers.Field:
    """A serializer field describing how `model_field` travels (values.kind_of)."""
    kind = values.kind_of(model_field)
    label = str(capfirst(model_field.verbose_name))
    options: dict[str, Any] = {"label": label, "required": required}
    if help_text:
        options["help_text"] = help_text
    nullable = model_field.null or kind in ("date", "datetime", "dictionary", "user", "record")
    if write and (required or (kind in ("user", "record") and not model_field.null)):
        nullable = False  # a write's null empties the field: refused where it may not be
    if nullable:
        options["allow_null"] = True
    if kind == "dictionary":
        return DictionaryCodeField(**options) if write else DictionaryItemField(**options)
    if kind in ("user", "record"):
        return serializers.IntegerField(**options)
    if kind == "record_type":
        return serializers.CharField(**options)
    if kind == "tags":
        return serializers.ListField(
            child=serializers.CharField(), label=label, required=required, help_text=help_text
        )
    if kind == "datetime":
        return serializers.DateTimeField(**options)
    if kind == "date":
        return serializers.DateField(**options)
    if kind == "decimal":
        return serializers.DecimalField(
            max_digits=model_field.max_digits,
            decimal_places=model_field.decimal_places,
            coerce_to_string=True,
            **options,
        )
    if model_field.choices:
        return ChoiceValueField(choices=model_field.choices, **options)
    if isinstance(model_field, models.BooleanField):
        return serializers.BooleanField(**options)
    if isinstance(model_field, models.IntegerField):
        return serializers.IntegerField(**options)
    if isinstance(model_field, models.EmailField):
        if not write:
            return StoredEmailField(allow_blank=True, **options)
        return serializers.EmailField(allow_blank=True, **options)
    if isinstance(model_field, models.URLField):
        if not write:
            return StoredUrlField(allow_blank=True, **options)
        return serializers.URLField(allow_blank=True, **options)
    if write:
        # As the model validates it (a stored value is shown whatever it is).
        options["allow_blank"] = model_field.blank
        options["max_length"] = getattr(model_field, "max_length", None)
        return serializers.CharField(**options)
    return serializers.CharField(allow_blank=True, **options)


def _class_name(spec: ApiSpec) -> str:
    return spec.model.__name__


def record_serializer(spec: ApiSpec) -> type[serializers.Serializer]:
    """The response of one record (hidden fields are left out per user)."""
    model = spec.model
    attrs: dict[str, Any] = {"id": serializers.IntegerField(read_only=True)}
    for name in spec.fields:
        model_field = model._meta.get_field(name)
        attrs[name] = _described(model_field, write=False, name=name)
        kind = values.kind_of(model_field)
        if kind == "user" and name in values.NAMED_PEOPLE:
            attrs[f"{name}_name"] = serializers.CharField(allow_null=True, required=False)
        if name == "stage":
            attrs["stage_name"] = serializers.CharField(allow_null=True, required=False)
    if spec.has_custom:
        attrs[values.CUSTOM] = CustomValuesField(spec.key, required=False)
    attrs["Meta"] = type("Meta", (), {"ref_name": _class_name(spec)})
    return type(f"{_class_name(spec)}Serializer", (serializers.Serializer,), attrs)


def write_serializer(spec: ApiSpec) -> type[serializers.Serializer]:
    """A create's or an update's body: the fields a write may set (create-only ones
    say so; those a create and a PUT must be given are required, a PATCH's none)."""
    model = spec.model
    attrs: dict[str, Any] = {}
    for name in (*spec.writable, *spec.create_only):
        help_text = "Only when creating." if name in spec.create_only else ""
        attrs[name] = _described(
            model._meta.get_field(name),
            write=True,
            name=name,
            help_text=help_text,
            required=name in spec.required,
        )
    if spec.has_custom:
        attrs[values.CUSTOM] = CustomValuesField(spec.key, required=False)
    attrs["Meta"] = type("Meta", (), {"ref_name": f"{_class_name(spec)}Write"})
    return type(f"{_class_name(spec)}WriteSerializer", (serializers.Serializer,), attrs)


# --- Action bodies ---------------------------------------------------------------------------

MoveSerializer = inline_serializer(
    name="StageMove",
    fields={
        "stage": serializers.CharField(help_text="The target stage: id or name."),
        "expected_stage": serializers.IntegerField(
            required=False,
            help_text="The stage id the client last saw; a record moved meanwhile is a 409.",
        ),
        "lost_reason": serializers.CharField(
            required=False, help_text="Code of a lost reason (needed for a lost stage)."
        ),
        "lost_note": serializers.CharField(required=False),
        "values": serializers.DictField(
            required=False,
            help_text="Fields to fill first (a stage's required ones): standard names, "
            "custom fields as cf_<key>.",
        ),
    },
)

OwnerSerializer = inline_serializer(
    name="OwnerChange",
    fields={"owner": serializers.IntegerField(help_text="The new owner's user id.")},
)

ReleaseSerializer = inline_serializer(
    name="Release", fields={"reason": serializers.CharField(required=False)}
)

ConvertSerializer = inline_serializer(
    name="LeadConversion",
    fields={
        "customer": serializers.JSONField(
            required=False,
            help_text="An existing customer's id, or an object of a new customer's fields "
            "(name, phone, email, ...; default: the lead's).",
        ),
        "contact": serializers.JSONField(
            required=False,
            help_text="true (from the lead), or an object of the new contact's fields.",
        ),
        "deal": serializers.JSONField(
            required=False, help_text="An object of the new deal's fields (title, amount, ...)."
        ),
    },
)

ConversionResultSerializer = inline_serializer(
    name="LeadConversionResult",
    fields={
        "lead": serializers.IntegerField(),
        "customer": serializers.IntegerField(),
        "contact": serializers.IntegerField(allow_null=True),
        "deal": serializers.IntegerField(allow_null=True),
        "customer_created": serializers.BooleanField(),
    },
)
