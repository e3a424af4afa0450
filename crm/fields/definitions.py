"""Checks on a custom field's definition that need its values: the default must be a
valid value, and a unique field must not already hold duplicates."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from ..models import CustomField
from . import indexes, types


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
    if errors:
        raise ValidationError(errors)
