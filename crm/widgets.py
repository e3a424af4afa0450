"""Widgets rendered in Python where Django's templates are too slow for a busy page.

Django renders a <select> with one template include per <option>: a list page whose
filter form offers 50 people, 30 dictionary items and the departments spends ~10 ms in
it. `FastSelect` writes the same HTML directly; `speed_up_selects(form)` switches the
plain selects of a form to it.
"""

from __future__ import annotations

from django import forms
from django.forms.utils import flatatt
from django.utils.html import conditional_escape, escape
from django.utils.safestring import mark_safe


class FastSelectMixin:
    """Render a Select (or SelectMultiple) as Django's templates would, in Python."""

    def render(self, name, value, attrs=None, renderer=None):
        final_attrs = self.build_attrs(self.attrs, attrs)
        if self.allow_multiple_selected:
            final_attrs["multiple"] = True
        wanted = {str(v) for v in self.format_value(value)}
        html = [f'<select name="{escape(name)}"{flatatt(final_attrs)}>']
        selected_one = False

        def option(option_value, label) -> None:
            nonlocal selected_one
            text = "" if option_value is None else str(option_value)
            selected = text in wanted and (self.allow_multiple_selected or not selected_one)
            selected_one = selected_one or selected
            html.append(
                f'<option value="{escape(text)}"{" selected" if selected else ""}>'
                f"{conditional_escape(label)}</option>"
            )

        for option_value, label in self.choices:
            if isinstance(label, list | tuple):
                html.append(f'<optgroup label="{escape(option_value)}">')
                for sub_value, sub_label in label:
                    option(sub_value, sub_label)
                html.append("</optgroup>")
            else:
                option(option_value, label)
        html.append("</select>")
        return mark_safe("".join(html))  # noqa: S308 - every value is escaped above


class FastSelect(FastSelectMixin, forms.Select):
    pass


class FastSelectMultiple(FastSelectMixin, forms.SelectMultiple):
    pass


_FAST = {forms.Select: FastSelect, forms.SelectMultiple: FastSelectMultiple}


def speed_up_selects(form: forms.BaseForm) -> forms.BaseForm:
    """Switch the form's plain Select/SelectMultiple widgets (not subclasses with their
    own rendering) to the fast ones, keeping their attributes and choices."""
    for field in form.fields.values():
        fast = _FAST.get(type(field.widget))
        if fast is not None:
            field.widget.__class__ = fast
    return form


def style(form: forms.BaseForm, *, mark_errors: bool = True, only=None) -> forms.BaseForm:
    """Give each widget (or those of the fields named in `only`) the CSS class of its
    kind; mark invalid fields (which validates a bound form: pass mark_errors=False
    before its fields are final)."""
    for name, field in form.fields.items():
        if only is not None and name not in only:
            continue
        widget = field.widget
        if isinstance(widget, forms.CheckboxSelectMultiple):  # a RadioSelect subclass
            css = "form-selectgroup-input"  # shown as pills (crm/partials/field.html)
        elif isinstance(widget, forms.CheckboxInput | forms.RadioSelect):
            css = "form-check-input"
        elif isinstance(widget, forms.Select | forms.SelectMultiple) and not isinstance(
            widget, forms.CheckboxSelectMultiple | forms.RadioSelect
        ):
            css = "form-select"
        elif isinstance(widget, forms.MultiWidget):
            for sub in widget.widgets:
                sub.attrs["class"] = "form-control"
            continue
        else:
            css = "form-control"
        if mark_errors and form.is_bound and name in form.errors:
            css += " is-invalid"
        widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()
    return form
