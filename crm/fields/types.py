"""What each custom field type accepts, how its value is stored in the record's `custom`
JSON and how it reads back. The one source of truth for a custom field's validation
(DESIGN rule 5): the web form, the import, the API and automation all call
`clean_value` / `form_field` from here.

Stored forms (JSON): text, long text, email, URL → str; phone → E.164 str; integer → int;
decimal, money → str ("1234.50", exact); date → "YYYY-MM-DD"; datetime → UTC ISO
"YYYY-MM-DDTHH:MM:SS+00:00" (sorts as text); yes/no → bool; single choice → item code;
multiple choice → [item codes]; user → user id. An empty value is not stored at all.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.phones import format_phone

from ..models import CustomField, DictionaryItem, FieldType
from ..money import format_money
from ..params import parse_id
from . import coerce

LIST_SEPARATORS = re.compile(r"\s*[,，、;；|]\s*")

# Every field below parses with crm.fields.coerce, the functions standard fields are
# coerced with: "¥12,000" or 2026年3月5日 reads the same in a form, an import and the API.


class YesNoField(forms.TypedChoiceField):
    """Yes / no / not answered; accepts 是/否, Y/N, true/false, 1/0, ✓/✗ (coerce.to_bool)."""

    def __init__(self, **kwargs):
        choices = [("", "—"), ("true", _("Yes")), ("false", _("No"))]
        super().__init__(choices=choices, coerce=lambda v: v == "true", empty_value=None, **kwargs)

    def to_python(self, value):
        answer = coerce.to_bool(value)
        return "" if answer is None else "true" if answer else "false"

    def prepare_value(self, value):
        if isinstance(value, bool):
            return "true" if value else "false"
        return value


class LenientDecimalField(forms.DecimalField):
    """A number as people type and Excel exports it: "¥1,234.50", "12 000", "12万",
    1234.5 (coerce.to_decimal); more decimal places than the field keeps are refused."""

    def to_python(self, value):
        return coerce.to_decimal(
            value, max_digits=self.max_digits, decimal_places=self.decimal_places
        )


class LenientIntegerField(forms.IntegerField):
    """A whole number: "1,234", 12.0, "3万" (coerce.to_integer, within 64 bits)."""

    def to_python(self, value):
        return coerce.to_integer(value)


class TextField(forms.CharField):
    """Text; a number from a sheet becomes its digits, and a 16+ digit one Excel has
    rounded is refused (coerce.to_text)."""

    def to_python(self, value):
        return coerce.to_text(value)


class PhoneField(forms.CharField):
    """A phone number, stored as E.164; the admin's pattern applies to what was typed."""

    def to_python(self, value):
        return coerce.to_text(value)

    def clean(self, value):
        value = super().clean(value)
        return coerce.to_phone(value) if value else value


class DateField(forms.DateField):
    """A date in the formats coerce.to_date reads (2026-03-05, 2026/3/5, 2026年3月5日,
    Excel serials), within crm.dates' bounds."""

    def to_python(self, value):
        return coerce.to_date(value)


class DateTimeField(forms.DateTimeField):
    """A date and time as coerce.to_datetime reads it, in the current time zone."""

    def to_python(self, value):
        return coerce.to_datetime(value)


class MultiCodeField(forms.MultipleChoiceField):
    """Item codes; a text value ("A, B" or "甲、乙") is split and matched like a list."""

    def to_python(self, value):
        if value is not None and not isinstance(value, (list, tuple)):
            text = coerce.to_text(value)  # one cell: 0 is "0", not "nothing"
            value = [part for part in LIST_SEPARATORS.split(text) if part]
        return super().to_python(value)


class ChoiceMatchMixin:
    """Accept an item's code or either label (imports carry labels), ignoring case and
    width (coerce.Options); anything else is refused naming the value and the field."""

    def __init__(self, *args, options: coerce.Options | None = None, **kwargs):
        self.options = options or coerce.Options()
        super().__init__(*args, **kwargs)

    def _match(self, value):
        if isinstance(value, str) and value.strip():
            return self.options.match(value)
        return value


class CodeChoiceField(ChoiceMatchMixin, forms.ChoiceField):
    def to_python(self, value):
        return self._match(super().to_python(value))


class MultiCodeChoiceField(ChoiceMatchMixin, MultiCodeField):
    def to_python(self, value):
        return [self._match(v) for v in super().to_python(value)]


class UserChoiceField(forms.ModelChoiceField):
    """A user by id, or (from an import) by username, email or name (coerce.People: a
    name two people share is refused, asking for the username)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        people = getattr(self, "_people", None)
        if people is None or people.queryset is not self.queryset:
            people = self._people = coerce.People(self.queryset, not_found=coerce.NOT_A_USER)
        return people.match(value)

    def label_from_instance(self, obj):
        return obj.get_full_name() or obj.get_username()


def _bound(value: Decimal | None) -> int | Decimal | None:
    """A limit as people wrote it (10, not 10.0000) for the error message."""
    if value is None:
        return None
    value = Decimal(str(value))
    return int(value) if value == value.to_integral_value() else value.normalize()


def _pattern_validator(cf: CustomField) -> RegexValidator:
    message = cf.display_pattern_message or _("Enter a value in the required format.")
    # Its own code: a field's "invalid" message (email, URL) would replace the admin's.
    return RegexValidator(rf"^(?:{cf.pattern})\Z", message=message, code="pattern")


def choice_items(
    cf: CustomField, *, current: Any = None, include_inactive: bool = False
) -> list[DictionaryItem]:
    """The active items of the field's dictionary, plus any inactive one the record still
    holds (editing must not silently drop it), or every item when asked."""
    if cf.dictionary_id is None:
        return []
    kept = set(current if isinstance(current, list) else [current] if current else [])
    items = DictionaryItem.objects.filter(dictionary_id=cf.dictionary_id).order_by("order", "id")
    return [item for item in items if item.is_active or include_inactive or item.code in kept]


def _item_options(cf: CustomField, items: list[DictionaryItem]) -> coerce.Options:
    options = coerce.Options(cf.display_label)
    for item in items:
        options.add(item.code, [item.code], [item.label, item.label_en])
    return options


def form_field(
    cf: CustomField,
    *,
    current: Any = None,
    required: bool | None = None,
    include_inactive: bool = False,
) -> forms.Field:
    """The Django form field that validates values of `cf` (used by every entry point).
    Inactive dictionary items and users are accepted only as the record's `current`
    value (or all of them with include_inactive, for converting stored values)."""
    kind = cf.field_type
    common = {
        "label": cf.display_label,
        "required": cf.required if required is None else required,
        "help_text": cf.display_help,
    }
    validators = []
    if cf.pattern and kind in (
        FieldType.TEXT,
        FieldType.LONG_TEXT,
        FieldType.EMAIL,
        FieldType.PHONE,
        FieldType.URL,
    ):
        validators.append(_pattern_validator(cf))
    if kind in (FieldType.TEXT, FieldType.LONG_TEXT):
        widget = forms.Textarea(attrs={"rows": 3}) if kind == FieldType.LONG_TEXT else None
        field = TextField(
            max_length=cf.max_length or (None if kind == FieldType.LONG_TEXT else 500),
            widget=widget,
            validators=validators,
            **common,
        )
    elif kind == FieldType.INTEGER:
        field = LenientIntegerField(
            min_value=_bound(cf.min_value),
            max_value=_bound(cf.max_value),
            validators=validators,
            **common,
        )
        field.widget.attrs["inputmode"] = "numeric"
    elif kind in (FieldType.DECIMAL, FieldType.MONEY):
        places = 2 if kind == FieldType.MONEY else 4
        field = LenientDecimalField(
            max_digits=18,
            decimal_places=places,
            min_value=_bound(cf.min_value),
            max_value=_bound(cf.max_value),
            **common,
        )
        field.widget = forms.TextInput(attrs={"inputmode": "decimal"})
    elif kind == FieldType.DATE:
        field = DateField(
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            **common,
        )
    elif kind == FieldType.DATETIME:
        field = DateTimeField(
            widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            **common,
        )
    elif kind == FieldType.BOOLEAN:
        field = YesNoField(**common)
    elif kind == FieldType.CHOICE:
        items = choice_items(cf, current=current, include_inactive=include_inactive)
        field = CodeChoiceField(
            choices=[("", _("— not set —"))] + [(i.code, str(i)) for i in items],
            options=_item_options(cf, items),
            **common,
        )
    elif kind == FieldType.MULTI_CHOICE:
        items = choice_items(cf, current=current, include_inactive=include_inactive)
        field = MultiCodeChoiceField(
            choices=[(i.code, str(i)) for i in items],
            options=_item_options(cf, items),
            widget=forms.CheckboxSelectMultiple,
            **common,
        )
    elif kind == FieldType.EMAIL:
        field = forms.EmailField(max_length=cf.max_length or 254, validators=validators, **common)
    elif kind == FieldType.PHONE:
        field = PhoneField(max_length=40, validators=validators, **common)
        field.widget.attrs["inputmode"] = "tel"
    elif kind == FieldType.URL:
        field = forms.URLField(
            max_length=cf.max_length or 500, assume_scheme="https", validators=validators, **common
        )
    elif kind == FieldType.USER:
        from accounts.models import User

        people = User.objects.all() if include_inactive else User.objects.filter(is_active=True)
        if parse_id(current) is not None:  # an id; a name is looked up
            people = User.objects.filter(is_active=True) | User.objects.filter(pk=current)
        field = UserChoiceField(queryset=people.order_by("name", "username"), **common)
    else:  # pragma: no cover - every type is handled above
        raise ValueError(f"unknown field type {kind!r}")
    return field


def to_storage(cf: CustomField, value: Any) -> Any:
    """A cleaned Python value as stored in JSON; None for "empty" (not stored)."""
    if value is None or value == "" or value == []:
        return None
    kind = cf.field_type
    if kind == FieldType.MONEY:
        return str(Decimal(value).quantize(Decimal("0.01")))
    if kind == FieldType.DECIMAL:
        return format(Decimal(value).normalize(), "f")
    if kind == FieldType.DATE:
        return value.isoformat()
    if kind == FieldType.DATETIME:
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value.astimezone(UTC).replace(microsecond=0).isoformat()
    if kind == FieldType.USER:
        return value.pk
    if kind == FieldType.MULTI_CHOICE:
        return list(value)
    return value


def from_storage(cf: CustomField, stored: Any) -> Any:
    """The stored JSON value as the Python value a form field shows."""
    if stored is None or stored == "" or stored == []:
        return None
    kind = cf.field_type
    try:
        if kind in (FieldType.DECIMAL, FieldType.MONEY):
            return Decimal(str(stored))
        if kind == FieldType.DATE:
            return date.fromisoformat(stored)
        if kind == FieldType.DATETIME:
            return timezone.localtime(datetime.fromisoformat(stored))
        if kind == FieldType.PHONE:
            return format_phone(stored)
    except (ValueError, TypeError, InvalidOperation):
        return stored
    return stored


def clean_value(
    cf: CustomField,
    raw: Any,
    *,
    required: bool | None = None,
    current: Any = None,
    include_inactive: bool = False,
) -> Any:
    """Validate one raw value (form text, an import cell, API JSON, an automation action)
    and return what is stored; raises ValidationError with the user-facing message.
    `current` is the record's stored value: an item or user deactivated since stays
    acceptable for it, and only for it."""
    if cf.field_type == FieldType.USER and hasattr(raw, "pk"):
        raw = raw.pk
    field = form_field(cf, current=current, required=required, include_inactive=include_inactive)
    return to_storage(cf, field.clean(raw))


def display_value(
    cf: CustomField,
    stored: Any,
    *,
    items: dict[tuple[int, str], DictionaryItem] | None = None,
    users: dict[int, Any] | None = None,
) -> str:
    """Human-readable text of a stored value (detail pages, lists, exports)."""
    if stored is None or stored == "" or stored == []:
        return ""
    kind = cf.field_type
    if kind == FieldType.BOOLEAN:
        return str(_("Yes") if stored else _("No"))
    if kind in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        codes = stored if isinstance(stored, list) else [stored]
        labels = []
        for code in codes:
            item = (items or {}).get((cf.dictionary_id, code))
            labels.append(str(item) if item else str(code))
        return "、".join(labels)
    if kind == FieldType.USER:
        person = (users or {}).get(stored)
        return (person.get_full_name() or person.get_username()) if person else f"#{stored}"
    if kind == FieldType.MONEY:
        try:
            return format_money(Decimal(stored))
        except InvalidOperation:
            return str(stored)
    if kind == FieldType.DATETIME:
        value = from_storage(cf, stored)
        return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else str(stored)
    if kind == FieldType.PHONE:
        return format_phone(stored)
    return str(stored)


def parse_default(cf: CustomField) -> Any:
    """The field's default as the value a new record's form starts with (or None)."""
    if not cf.default:
        return None
    try:
        return from_storage(cf, clean_value(cf, cf.default, required=False))
    except ValidationError:
        return None


def unique_message(cf) -> str:
    return gettext("Another record already has this %(field)s.") % {"field": cf.display_label}
