"""The board's filters and the small form a move asks for: the target stage's required
fields the record lacks, and for a lost stage the lost reason."""

from __future__ import annotations

from django import forms
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts import access
from crm.fields import schema, types
from crm.filters import DepartmentFilter, OwnerFilter, RecordFilterSet, owner_choices
from crm.models import Contact, DictionaryItem
from crm.widgets import style

from .models import LOST_REASON, Deal, Lead, Stage, StageKind


class _BoardFilter(RecordFilterSet):
    owner = OwnerFilter(label=_("Owner"), choices=())
    department = DepartmentFilter(label=_("Department"))

    pool = False

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, request=request, **kwargs)
        self.filters["owner"].extra["choices"] = owner_choices(request, pool=self.pool)

    def add_field_filters(self, request, record_type: str) -> None:
        # The board filters by people only; a list's custom-field filters live there.
        return None


class DealBoardFilter(_BoardFilter):
    class Meta:
        model = Deal
        fields: list[str] = []


class LeadBoardFilter(_BoardFilter):
    pool = True

    class Meta:
        model = Lead
        fields: list[str] = []


def board_filter_class(model) -> type[_BoardFilter]:
    return DealBoardFilter if model is Deal else LeadBoardFilter


class MoveForm(forms.Form):
    """Fields a move needs filled: built from the missing required fields (standard ones
    by the model field's own form field, custom ones by crm.fields.types) and, for a lost
    stage, the lost reason and a note. Its values are validated by the service
    (apply_values), the one place that checks them; the form shows its errors."""

    def __init__(self, *args, record, stage: Stage, user, missing, **kwargs):
        super().__init__(*args, **kwargs)
        self.record, self.stage = record, stage
        record_type = "lead" if isinstance(record, Lead) else "deal"
        restricted = access.hidden_fields(user, record_type) | access.readonly_fields(
            user, record_type
        )
        custom = {cf.name: cf for cf in schema.custom_fields(record_type)}
        self.value_names: list[str] = []
        self.blocked: list[str] = []  # labels of fields the user may not fill in
        for name, label in missing:
            if name in restricted:
                self.blocked.append(label)
                continue
            field = self._field_for(name, custom)
            if field is None:
                self.blocked.append(label)
                continue
            field.required = True
            field.label = capfirst(label)
            field.initial = None  # it is empty: no model default ("0") to type over
            self.fields[name] = field
            self.value_names.append(name)
        if stage.kind == StageKind.LOST:
            self.fields["lost_reason"] = forms.ModelChoiceField(
                label=LOST_REASON[record_type],
                queryset=DictionaryItem.objects.of("lost_reason")
                .active()
                .select_related("dictionary")
                .order_by("order", "id"),
                empty_label=_("Choose a reason…"),
            )
            self.fields["lost_note"] = forms.CharField(
                label=_("Note"),
                required=False,
                max_length=300,
                widget=forms.Textarea(attrs={"rows": 2}),
            )
        style(self, mark_errors=False)

    def _field_for(self, name: str, custom: dict) -> forms.Field | None:
        record = self.record
        if name.startswith("cf_"):
            cf = custom.get(name)
            if cf is None:
                return None
            return types.form_field(cf, current=(record.custom or {}).get(cf.key), required=True)
        try:
            model_field = record._meta.get_field(name)
        except Exception:
            return None
        field = model_field.formfield()
        if field is None:
            return None
        if name == "contact" and isinstance(record, Deal):
            field.queryset = Contact.objects.filter(customer_id=record.customer_id).order_by(
                "-is_primary", "name", "pk"
            )
        if isinstance(field, forms.DateField):
            field.widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        if isinstance(field, forms.DecimalField):
            field.widget.attrs.setdefault("inputmode", "decimal")
        return field

    def raw_values(self) -> dict:
        """The posted value of each field to fill, as the service wants it (raw)."""
        return {name: self[name].data for name in self.value_names}

    def show_errors(self, errors: dict) -> None:
        """Put a service's errors ({field: [messages]}) on the (validated) form."""
        for name, messages in errors.items():
            self.add_error(name if name in self.fields else None, messages)

    def full_clean(self):
        super().full_clean()
        self.mark_invalid()

    def add_error(self, field, error):
        super().add_error(field, error)
        self.mark_invalid()

    def mark_invalid(self) -> None:
        for name in self._errors or {}:
            if name in self.fields:
                widget = self.fields[name].widget
                if "is-invalid" not in widget.attrs.get("class", ""):
                    widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()
