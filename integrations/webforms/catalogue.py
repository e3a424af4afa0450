"""Which lead fields a web form may ask for, and how each is shown to a visitor.

The standard fields a visitor can fill in (not the owner, stage or source: the form sets
those), and the lead's active custom fields except those naming a user (a visitor picks
no colleague). Values are read by crm.fields.coerce like an import's or the API's."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import pgettext_lazy

from crm.fields import schema, types
from crm.models import CustomField, FieldType

STANDARD = ("person_name", "company_name", "title", "phone", "email", "wechat", "notes")
# The standard fields as a visitor is asked for them (the lead's own labels are the
# reps' words: 名称 for the person's name, 备注 for notes).
VISITOR_LABELS = {
    "person_name": pgettext_lazy("web form", "Your name"),
    "company_name": pgettext_lazy("web form", "Company"),
    "title": pgettext_lazy("web form", "Job title"),
    "phone": pgettext_lazy("web form", "Phone"),
    "email": pgettext_lazy("web form", "Email"),
    "wechat": pgettext_lazy("web form", "WeChat ID"),
    "notes": pgettext_lazy("web form", "Message"),
}


def _custom_fields() -> list[CustomField]:
    return [cf for cf in schema.custom_fields("lead") if cf.field_type != FieldType.USER]


def field_names() -> list[str]:
    return [*STANDARD, *(cf.name for cf in _custom_fields())]


def field_choices() -> list[tuple[str, str]]:
    return [(name, label_of(name)) for name in field_names()]


def label_of(name: str) -> str:
    if name in STANDARD:
        return str(VISITOR_LABELS[name])
    cf = custom_field(name)
    return cf.display_label if cf else name


def custom_field(name: str) -> CustomField | None:
    return next((cf for cf in _custom_fields() if cf.name == name), None)


@dataclass
class Widget:
    """How a field is drawn: an <input type>, a <textarea>, a <select> or checkboxes."""

    kind: str  # input, textarea, select, checkboxes, checkbox
    input_type: str = "text"
    options: list[tuple[str, str]] = field(default_factory=list)
    max_length: int | None = None
    attrs: dict[str, str] = field(default_factory=dict)


_STANDARD_WIDGETS = {
    "phone": Widget("input", "tel", max_length=32, attrs={"autocomplete": "tel"}),
    "email": Widget("input", "email", max_length=254, attrs={"autocomplete": "email"}),
    "person_name": Widget("input", max_length=100, attrs={"autocomplete": "name"}),
    "company_name": Widget("input", max_length=200, attrs={"autocomplete": "organization"}),
    "title": Widget("input", max_length=100, attrs={"autocomplete": "organization-title"}),
    "wechat": Widget("input", max_length=100),
    "notes": Widget("textarea", max_length=5000),
}
_CUSTOM_INPUTS = {
    FieldType.TEXT: "text",
    FieldType.INTEGER: "text",
    FieldType.DECIMAL: "text",
    FieldType.MONEY: "text",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime-local",
    FieldType.EMAIL: "email",
    FieldType.PHONE: "tel",
    FieldType.URL: "url",
}


def widget_of(name: str) -> Widget:
    if name in _STANDARD_WIDGETS:
        return _STANDARD_WIDGETS[name]
    cf = custom_field(name)
    if cf is None:
        return Widget("input")
    kind = cf.field_type
    if kind == FieldType.LONG_TEXT:
        return Widget("textarea", max_length=cf.max_length)
    if kind == FieldType.BOOLEAN:
        return Widget("checkbox")
    if kind in (FieldType.CHOICE, FieldType.MULTI_CHOICE):
        options = [(item.code, str(item)) for item in types.choice_items(cf)]
        return Widget("select" if kind == FieldType.CHOICE else "checkboxes", options=options)
    attrs = {"inputmode": "decimal"} if kind in (FieldType.DECIMAL, FieldType.MONEY) else {}
    if kind == FieldType.INTEGER:
        attrs = {"inputmode": "numeric"}
    max_length = cf.max_length if kind == FieldType.TEXT else None
    return Widget("input", _CUSTOM_INPUTS.get(kind, "text"), max_length=max_length, attrs=attrs)
