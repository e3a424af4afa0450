"""Record forms with field permissions and custom fields applied, once (DESIGN rule 2).

A ModelForm for a record type mixes in CustomFieldsFormMixin and calls `apply_fields(user)`
at the end of its __init__: fields hidden from the user are removed, read-only ones are
disabled (Django then ignores anything posted for them), and the active custom fields
the user may see are added, validated by crm.fields.types like every other entry point.
"""

from __future__ import annotations

from accounts import access

from ..widgets import style
from . import query, schema, types
from .types import unique_message


class CustomFieldsFormMixin:
    record_type: str = ""

    def apply_fields(self, user) -> None:
        self.field_user = user
        hidden = access.hidden_fields(user, self.record_type)
        readonly = access.readonly_fields(user, self.record_type)
        for name in list(self.fields):
            if name in hidden:
                del self.fields[name]
            elif name in readonly:
                self.fields[name].disabled = True
                self.fields[name].required = False
        self.custom_specs = schema.custom_specs(user, self.record_type)
        stored = self.instance.custom or {}
        added = []
        for spec in self.custom_specs:
            cf = spec.custom
            field = types.form_field(cf, current=stored.get(cf.key))
            if self.instance.pk:
                field.initial = types.from_storage(cf, stored.get(cf.key))
            else:
                field.initial = types.parse_default(cf)
            if not spec.editable:
                field.disabled = True
                field.required = False
            self.fields[cf.name] = field
            added.append(cf.name)
        if added:
            style(self, mark_errors=False, only=added)

    def custom_sections(self) -> list[tuple[str, list]]:
        """The custom fields' bound fields grouped by section, in the admin's order."""
        sections: dict[str, list] = {}
        for spec in self.custom_specs:
            sections.setdefault(spec.custom.section or "", []).append(self[spec.name])
        return list(sections.items())

    def clean(self):
        cleaned = super().clean()
        model = type(self.instance)
        for spec in self.custom_specs:
            cf = spec.custom
            if not (spec.editable and cf.unique) or cf.name in self.errors:
                continue
            value = types.to_storage(cf, cleaned.get(cf.name))
            if value is None:
                continue
            others = query.filter_exact(model._default_manager.all(), cf, value)
            if self.instance.pk:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error(cf.name, unique_message(cf))
        return cleaned

    def _post_clean(self):
        # Custom values go into the instance's JSON before the model is validated.
        custom = dict(self.instance.custom or {})
        for spec in self.custom_specs:
            cf = spec.custom
            if not spec.editable or cf.name not in self.cleaned_data:
                continue
            value = types.to_storage(cf, self.cleaned_data[cf.name])
            if value is None:
                custom.pop(cf.key, None)
            else:
                custom[cf.key] = value
        self.instance.custom = custom
        super()._post_clean()
