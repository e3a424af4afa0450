"""The form renderer: Django's, with its plainest widget templates written in Python.

Every `{{ form.field }}` renders its widget through a template, and an <input> is three
templates deep (datetime.html -> input.html -> attrs.html): ~1.5 ms a field on the
customer page's follow-up form, and the board's filter spent ~8 ms in select.html and
one select_option.html per option. `FastRenderer` builds the HTML of the templates in
`FAST` from the same context, character for character what Django's templates give
(tests/test_renderers.py compares them), and leaves every other template, and any of
these an app overrides, to the template engine.
"""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.forms.renderers import DjangoTemplates
from django.template.base import render_value_in_context
from django.template.context import Context
from django.utils.safestring import SafeData

from .html import escape

_DJANGO_FORMS = str(Path(forms.__file__).parent / "templates")
_CONTEXT = Context()  # what a widget's template is rendered with: no use_l10n or use_tz


def _text(value) -> str:
    """`{{ value }}`: localized when a number or date, escaped unless safe."""
    if type(value) is str:
        return escape(value)
    return render_value_in_context(value, _CONTEXT)


def _formatted(value) -> str:
    """`{{ value|stringformat:'s' }}`: str() of it, escaped unless it was safe."""
    text = str(value)
    return text if isinstance(value, SafeData) else escape(text)


def _attrs(attrs: dict) -> str:
    """django/forms/widgets/attrs.html."""
    parts = []
    for name, value in attrs.items():
        if value is False:
            continue
        parts.append(
            f" {_text(name)}" if value is True else f' {_text(name)}="{_formatted(value)}"'
        )
    return "".join(parts)


def _input(widget: dict) -> str:
    """django/forms/widgets/input.html (and the templates that only include it)."""
    value = widget["value"]
    shown = "" if value is None else f' value="{_formatted(value)}"'
    return (
        f'<input type="{_text(widget["type"])}" name="{_text(widget["name"])}"'
        f"{shown}{_attrs(widget['attrs'])}>"
    )


def _textarea(widget: dict) -> str:
    value = widget["value"]
    return (
        f'<textarea name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>\n'
        f"{_text(value) if value else ''}</textarea>"
    )


_OPTION = "django/forms/widgets/select_option.html"


def _option(option: dict) -> str:
    """select_option.html, with the newline that ends the file (kept by the include)."""
    return (
        f'<option value="{_formatted(option["value"])}"{_attrs(option["attrs"])}>'
        f"{_text(option['label'])}</option>\n"
    )


def _select(widget: dict) -> str | None:
    """django/forms/widgets/select.html; None when an option has a template of its own."""
    parts = [f'<select name="{_text(widget["name"])}"{_attrs(widget["attrs"])}>']
    for group_name, group_choices, _index in widget["optgroups"]:
        if group_name:
            parts.append(f'\n  <optgroup label="{_text(group_name)}">')
        for option in group_choices:
            if option["template_name"] != _OPTION:
                return None
            parts.append(f"\n  {_option(option)}")
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return "".join(parts)


_INPUTS = [
    "input",
    "checkbox",
    "color",
    "date",
    "datetime",
    "email",
    "hidden",
    "number",
    "password",
    "search",
    "tel",
    "text",
    "time",
    "url",
]
# What the templates of FAST include: overriding any of them turns the fast path off.
_INCLUDED = (
    "django/forms/widgets/attrs.html",
    "django/forms/widgets/input.html",
    _OPTION,
)
FAST = {
    **{f"django/forms/widgets/{name}.html": _input for name in _INPUTS},
    "django/forms/widgets/textarea.html": _textarea,
    "django/forms/widgets/select.html": _select,
}


class FastRenderer(DjangoTemplates):
    """settings.FORM_RENDERER."""

    def __init__(self) -> None:
        super().__init__()
        self._builtin: dict[str, bool] = {}

    def is_builtin(self, template_name: str) -> bool:
        """Whether the engine would render Django's own template of that name and of the
        templates FAST's include, not an app's override of one."""
        builtin = self._builtin.get(template_name)
        if builtin is None:
            names = [template_name, *_INCLUDED]
            builtin = all(
                self.get_template(name).origin.name.startswith(_DJANGO_FORMS) for name in names
            )
            self._builtin[template_name] = builtin
        return builtin

    def render(self, template_name, context, request=None):
        build = FAST.get(template_name)
        if build is not None and self.is_builtin(template_name):
            html = build(context["widget"])
            if html is not None:
                return html
        return super().render(template_name, context, request=request)
