"""Form helpers: every form looks the same (Tabler/Bootstrap classes)."""

from django import forms


def style(form: forms.BaseForm) -> forms.BaseForm:
    """Give each widget the CSS class of its kind; mark invalid fields."""
    for name, field in form.fields.items():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput):
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
        if form.is_bound and name in form.errors:
            css += " is-invalid"
        widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()
    return form


class StyledFormMixin:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style(self)

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                if "is-invalid" not in widget.attrs.get("class", ""):
                    widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()
