"""One stage-move request path: the form a move asks for and the "move request → service
→ outcome" helper that the board, the lead and deal pages and (next) the API share.

A request names a record, a target stage and the user, with the posted data. The first
request usually carries no values: the service (pipelines.services.move_to_stage, DESIGN
rule 3) moves the record or refuses for missing required fields or a missing lost reason;
the outcome then asks for them with StageMoveForm. Posted again with the form's values,
the form checks what a form can (choices scoped to the user, field permissions, formats)
and the service checks the rest and moves. Each caller only presents the outcome: the
board with htmx partials, the record pages with their page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.forms.models import apply_limit_choices_to_to_formfield
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import access
from accounts.models import User
from crm.fields import schema, types
from crm.models import CustomField, DictionaryItem
from crm.params import id_param
from crm.widgets import style

from . import services
from .forms import contact_choices
from .models import LOST_REASON, LOST_REASON_REQUIRED, Deal, Stage, StageHistory, StageKind
from .services import StagedRecord, StageMoveRefused

# Posted with the form's values: the request fills in what the move asked for (a form
# whose only field is an unticked checkbox posts nothing else).
FORM_MARKER = "move_form"
# Refusals a form can complete; every other refusal (stale, pipeline, converted, closed)
# is final for this request.
ASKING_CODES = ("required", "lost_reason")


class StageMoveForm(forms.Form):
    """What a move into `stage` needs from the user: the stage's required fields the
    record has not filled and, for a lost stage, the lost reason and a note.

    Field permissions apply as on the record's edit form: a hidden field is left out and
    a read-only one is shown disabled; both are listed in `blocked` (the move cannot be
    completed by this user). The contact is one of the deal customer's contacts the user
    may see (contact_choices). The service validates the values again when it applies
    them (services.apply_values): the form is the first check, never the only one."""

    def __init__(
        self,
        record: StagedRecord,
        stage: Stage,
        user: User,
        data: Mapping[str, Any] | None = None,
        *,
        missing: list[tuple[str, str]] | None = None,
    ):
        super().__init__(data)
        self.record, self.stage, self.user = record, stage, user
        self.record_type = services.record_type_of(record)
        if missing is None:
            missing = services.missing_fields(record, stage)
        hidden = access.hidden_fields(user, self.record_type)
        readonly = access.readonly_fields(user, self.record_type)
        custom = {cf.name: cf for cf in schema.custom_fields(self.record_type)}
        self.value_names: list[str] = []  # the fields whose values go to the service
        self.blocked: list[str] = []  # labels of required fields the user may not fill in
        for name, label in missing:
            field = None if name in hidden else self._field_for(name, custom)
            if field is None:
                self.blocked.append(str(label))
                continue
            field.label = capfirst(label)
            field.initial = None  # it is empty: no model default ("0") to type over
            if name in readonly:
                field.disabled, field.required = True, False
                self.blocked.append(str(label))
            else:
                field.required = True
                self.value_names.append(name)
            self.fields[name] = field
        if stage.kind == StageKind.LOST:
            self.fields["lost_reason"] = forms.ModelChoiceField(
                label=LOST_REASON[self.record_type],
                queryset=DictionaryItem.objects.of("lost_reason")
                .active()
                .select_related("dictionary")
                .order_by("order", "id"),
                empty_label=gettext_lazy("Choose a reason…"),
                error_messages={"required": LOST_REASON_REQUIRED[self.record_type]},
            )
            self.fields["lost_note"] = forms.CharField(
                label=gettext_lazy("Note"),
                required=False,
                max_length=300,
                widget=forms.Textarea(attrs={"rows": 2}),
            )
        style(self, mark_errors=False)

    def _field_for(self, name: str, custom: dict[str, CustomField]) -> forms.Field | None:
        """The form field of a standard or custom field, or None when there is none (a
        stage may name a custom field that was deactivated since)."""
        record = self.record
        if name.startswith("cf_"):
            cf = custom.get(name)
            if cf is None:
                return None
            return types.form_field(cf, current=(record.custom or {}).get(cf.key), required=True)
        try:
            model_field = record._meta.get_field(name)
        except FieldDoesNotExist:
            return None
        field = model_field.formfield()
        if field is None:
            return None
        if name == "contact" and isinstance(record, Deal):
            field.queryset = (
                contact_choices(self.user, current=record.contact_id)
                .filter(customer_id=record.customer_id)
                .order_by("-is_primary", "name", "pk")
            )
            field.empty_label = gettext_lazy("Choose a contact…")
        elif isinstance(field, forms.ModelChoiceField) and field.queryset.model is DictionaryItem:
            # Like the edit form: the active items of the field's dictionary (its
            # limit_choices_to, which only a ModelForm applies by itself).
            apply_limit_choices_to_to_formfield(field)
            field.queryset = field.queryset.filter(is_active=True).order_by("order", "id")
        if isinstance(field, forms.DateField):
            field.widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        if isinstance(field, forms.DecimalField):
            field.widget.attrs.setdefault("inputmode", "decimal")
        return field

    @property
    def submitted(self) -> bool:
        """Whether the data fills in this form (its marker or any of its fields), rather
        than only asking for the move."""
        if not self.is_bound:
            return False
        return FORM_MARKER in self.data or any(self.add_prefix(n) in self.data for n in self.fields)

    def raw_values(self) -> dict[str, Any]:
        """The posted value of each field to fill, as the service wants it (raw)."""
        return {name: self[name].data for name in self.value_names}

    def move_arguments(self) -> dict[str, Any]:
        """The (validated) form as move_to_stage's keyword arguments."""
        return {
            "values": self.raw_values() or None,
            "lost_reason": self.cleaned_data.get("lost_reason"),
            "lost_note": self.cleaned_data.get("lost_note") or "",
        }

    def show_errors(self, errors: dict[str | None, list[str]]) -> None:
        """Put a service's errors ({field: [messages]}) on the (validated) form."""
        for name, messages in errors.items():
            self.add_error(name if name in self.fields else None, messages)

    def full_clean(self) -> None:
        super().full_clean()
        self._mark_invalid()

    def add_error(self, field, error) -> None:
        super().add_error(field, error)
        self._mark_invalid()

    def _mark_invalid(self) -> None:
        for name in self._errors or {}:
            if name in self.fields:
                widget = self.fields[name].widget
                if "is-invalid" not in widget.attrs.get("class", ""):
                    widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


class MoveStatus(StrEnum):
    MOVED = "moved"  # moved, or it was in that stage already (history is None)
    NEEDS_INPUT = "needs_input"  # the form asks for fields or a lost reason
    REFUSED = "refused"  # final: stale view, another pipeline, converted, no right...


@dataclass(frozen=True)
class MoveOutcome:
    """What a move request came to, for a page (or the API) to present."""

    status: MoveStatus
    message: str
    form: StageMoveForm | None = None
    history: StageHistory | None = None
    code: str = ""  # why it was refused or asks: a StageMoveRefused code, "permission"...

    @property
    def moved(self) -> bool:
        return self.status == MoveStatus.MOVED

    @property
    def needs_input(self) -> bool:
        return self.status == MoveStatus.NEEDS_INPUT

    @property
    def refused(self) -> bool:
        return self.status == MoveStatus.REFUSED


Mover = Callable[..., StageHistory | None]


def request_move(
    *, record: StagedRecord, stage: Stage, user: User, data: Mapping[str, Any]
) -> MoveOutcome:
    """Move `record` to `stage` (of its pipeline) as `user` asks with `data` (the posted
    expected_stage, and the form's values when it is filled in)."""

    def mover(**kwargs):
        return services.move_to_stage(record=record, stage=stage, **kwargs)

    return _request(mover, record=record, stage=stage, user=user, data=data)


def request_pipeline_change(
    *, deal: Deal, stage: Stage, user: User, data: Mapping[str, Any]
) -> MoveOutcome:
    """Move `deal` into `stage` of another deal pipeline (services.change_pipeline), asked
    and answered like a move. That service keeps no lost note."""

    def mover(*, lost_note: str = "", **kwargs):
        return services.change_pipeline(deal=deal, stage=stage, **kwargs)

    return _request(mover, record=deal, stage=stage, user=user, data=data)


def _request(
    mover: Mover, *, record: StagedRecord, stage: Stage, user: User, data: Mapping[str, Any]
) -> MoveOutcome:
    form = StageMoveForm(record, stage, user, data)
    submitted = form.submitted
    if submitted and not form.is_valid():
        return _asks(form, _("Check the values below."))
    arguments = form.move_arguments() if submitted else {}
    try:
        history = mover(by=user, expected_stage_id=id_param(data, "expected_stage"), **arguments)
    except StageMoveRefused as exc:
        message = exc.messages[0]
        if exc.code not in ASKING_CODES:
            return MoveOutcome(MoveStatus.REFUSED, message, code=exc.code)
        if submitted:
            form.add_error(None, message)
        else:
            form = StageMoveForm(record, stage, user, missing=exc.missing)
        return _asks(form, message, code=exc.code)
    except PermissionDenied:
        return MoveOutcome(
            MoveStatus.REFUSED, _("Your role may not move this record."), code="permission"
        )
    except ValidationError as exc:
        if not submitted:
            return MoveOutcome(MoveStatus.REFUSED, " ".join(exc.messages), code="invalid")
        has_fields = hasattr(exc, "error_dict")
        form.show_errors(exc.message_dict if has_fields else {None: exc.messages})
        return _asks(form, _("Check the values below.") if has_fields else " ".join(exc.messages))
    if history is None:
        return MoveOutcome(MoveStatus.MOVED, _("It is in that stage already."))
    message = _("Moved to “%(stage)s”.") % {"stage": stage.display_name}
    return MoveOutcome(MoveStatus.MOVED, message, history=history)


def _asks(form: StageMoveForm, message: str, *, code: str = "invalid") -> MoveOutcome:
    return MoveOutcome(MoveStatus.NEEDS_INPUT, message, form=form, code=code)
