"""One stage-move request path: the form a move asks for and the "move request → service
→ outcome" helper that the board, the lead and deal pages and (next) the API share.

A request names a record, a target stage and the user, with the posted data. The first
request usually carries no values: the service (pipelines.services.move_to_stage, DESIGN
rule 3) moves the record or refuses for missing required fields or a missing lost reason;
the outcome then asks for them with StageMoveForm. Posted again with the form's values,
the form checks what a form can (choices scoped to the user, field permissions, formats)
and the service checks the rest and moves. Each caller only presents the outcome: the
board with htmx partials, the record pages with their page.

A stage that needs the deal's contact while its customer has none to choose from is no
dead end: the form adds one there (QuickContactForm, through crm's contact service and
its validation), in the same transaction as the move. A move just made can be taken
back by who made it while the record is still where the move put it (request_undo).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import transaction
from django.forms.models import apply_limit_choices_to_to_formfield
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import access
from accounts.models import User
from crm.fields import schema, types
from crm.fields.forms import CustomFieldsFormMixin
from crm.forms import StyledFormMixin
from crm.models import Contact, CustomField, DictionaryItem
from crm.params import id_param
from crm.services.contacts import create_contact
from crm.validation import CONTACT_NAME_REQUIRED
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
# The prefix of the new contact's fields in the move form.
NEW_CONTACT_PREFIX = "new_contact"
# How long after a move its maker may take it back (the board offers it for seconds).
UNDO_WINDOW = timedelta(minutes=2)


class QuickContactForm(CustomFieldsFormMixin, StyledFormMixin, forms.ModelForm):
    """A contact added from a move's form: its name and mobile, and any custom contact
    field that is required. Field permissions apply as on the contact form; the contact
    service validates it again (crm.services.contacts.create_contact)."""

    record_type = "contact"

    class Meta:
        model = Contact
        fields = ["name", "mobile"]
        widgets = {"mobile": forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"})}
        error_messages = {"name": {"required": CONTACT_NAME_REQUIRED}}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.apply_fields(user)
        # Only what a contact needs: optional custom fields wait for the contact's page.
        optional = [spec for spec in self.custom_specs if not spec.custom.required]
        for spec in optional:
            self.fields.pop(spec.name, None)
        self.custom_specs = [spec for spec in self.custom_specs if spec not in optional]
        for name, label in (
            ("name", gettext_lazy("New contact's name")),
            ("mobile", gettext_lazy("New contact's mobile")),
        ):
            if name in self.fields:
                self.fields[name].label = label

    @property
    def usable(self) -> bool:
        """Whether the user may fill in a contact's name (else nothing can be added)."""
        return "name" in self.fields and not self.fields["name"].disabled

    @property
    def filled(self) -> bool:
        """Whether any of its fields was posted (the move form's data fills it in)."""
        return self.is_bound and any(self.add_prefix(name) in self.data for name in self.fields)

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        exclude.add("customer")  # the deal's, given when it is added
        return exclude


class StageMoveForm(forms.Form):
    """What a move into `stage` needs from the user: the stage's required fields the
    record has not filled and, for a lost stage, the lost reason and a note.

    Field permissions apply as on the record's edit form: a hidden field is left out and
    a read-only one is shown disabled; both are listed in `blocked` (the move cannot be
    completed by this user). The contact is one of the deal customer's contacts the user
    may see (contact_choices); when there is none, the form adds one (`new_contact`, a
    QuickContactForm whose fields follow the form's own), if the user may add contacts
    to the customer. The service validates the values again when it applies them
    (services.apply_values): the form is the first check, never the only one."""

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
        # The contact to add when the deal needs one and its customer has none the user
        # may choose (`no_contacts`); `contact_dead_end`: none to choose, none may be added.
        self.new_contact: QuickContactForm | None = None
        self.no_contacts = False
        self.contact_dead_end = False
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
            if name == "contact" and name in self.value_names and isinstance(record, Deal):
                self._offer_new_contact(field, data)
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

    def _offer_new_contact(self, field: forms.ModelChoiceField, data) -> None:
        """When the deal's customer has no contact the user may choose, the form adds one
        instead of offering an empty list, if the user may add one to the customer;
        otherwise the list stays (empty) and `contact_dead_end` says why nothing can be
        chosen."""
        self.no_contacts = not field.queryset.exists()
        if not self.no_contacts:
            return
        record, user = self.record, self.user
        quick = None
        if access.has_permission(user, "contact", "add") and access.can(
            user, record.customer, "change"
        ):
            quick = QuickContactForm(data, user=user, prefix=NEW_CONTACT_PREFIX)
        if quick is None or not quick.usable:
            self.contact_dead_end = True
            return
        # The new contact's fields stand in for the empty list.
        self.new_contact = quick
        del self.fields["contact"]
        self.value_names.remove("contact")

    def __iter__(self):
        # The new contact's fields follow the form's own (a page showing the form shows
        # them too); `own_fields` and `contact_fields` part them.
        yield from self.own_fields
        yield from self.contact_fields

    @property
    def own_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields]

    @property
    def contact_fields(self) -> list[forms.BoundField]:
        return list(self.new_contact) if self.new_contact is not None else []

    @property
    def adding_contact(self) -> bool:
        """Whether the move adds a new contact (the customer has none to choose)."""
        return self.new_contact is not None

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if self.adding_contact:
            valid = self.new_contact.is_valid() and valid
        return valid

    def add_contact(self) -> Contact:
        """Add the new contact to the deal's customer (the validated quick form), through
        the contact service; its errors land on the quick form (ValidationError)."""
        contact = self.new_contact.save(commit=False)
        contact.customer = self.record.customer
        try:
            return create_contact(contact=contact, by=self.user)
        except ValidationError as exc:
            quick = self.new_contact
            errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
            for name, messages in errors.items():
                if name in quick.fields:
                    quick.add_error(name, messages)
                else:
                    self.add_error(None, messages)
            raise

    @property
    def submitted(self) -> bool:
        """Whether the data fills in this form (its marker or any of its fields), rather
        than only asking for the move."""
        if not self.is_bound:
            return False
        return (
            FORM_MARKER in self.data
            or any(self.add_prefix(n) in self.data for n in self.fields)
            or (self.new_contact is not None and self.new_contact.filled)
        )

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
        # A contact added for the move is kept only if the move is made.
        with transaction.atomic():
            if submitted and form.adding_contact:
                contact = _add_contact(form)
                arguments["values"] = {**(arguments["values"] or {}), "contact": contact.pk}
            history = mover(
                by=user, expected_stage_id=id_param(data, "expected_stage"), **arguments
            )
    except _ContactNotAdded as exc:
        return exc.outcome
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


class _ContactNotAdded(Exception):
    """The new contact was refused: the move's transaction rolls back, `outcome` says why."""

    def __init__(self, outcome: MoveOutcome):
        super().__init__(outcome.message)
        self.outcome = outcome


def _add_contact(form: StageMoveForm) -> Contact:
    try:
        return form.add_contact()
    except ValidationError:
        raise _ContactNotAdded(_asks(form, _("Check the values below."))) from None
    except PermissionDenied:
        message = _("Your role may not add contacts to this customer.")
        raise _ContactNotAdded(
            MoveOutcome(MoveStatus.REFUSED, message, code="permission")
        ) from None


# --- Undo -------------------------------------------------------------------------------


def request_undo(*, history: StageHistory, record: StagedRecord, user: User) -> MoveOutcome:
    """Take back the move `history` of `record` (which the user may see): only its maker,
    only soon after, and only while the record is still where that move put it (no move
    since). The record goes back through services.move_to_stage like any move."""
    if history.user_id is None or history.user_id != user.pk:
        return _undo_refused(_("Only who made a move can undo it."), "undo_other")
    if history.from_stage_id is None:
        return _undo_refused(_("This move has no earlier stage to go back to."), "undo_none")
    if timezone.now() - history.moved_at > UNDO_WINDOW:
        return _undo_refused(
            _("It is too late to undo this move: move the card back instead."), "undo_late"
        )
    back = history.from_stage
    try:
        with transaction.atomic():
            locked = (
                type(record)
                .objects.select_for_update(of=("self",))
                .select_related("stage")
                .get(pk=record.pk)
            )
            latest = (
                StageHistory.objects.filter(
                    record_type=history.record_type, record_id=history.record_id
                )
                .order_by("-moved_at", "-id")
                .values_list("pk", flat=True)
                .first()
            )
            if locked.stage_id != history.to_stage_id or latest != history.pk:
                return _undo_refused(
                    _("It has moved since (it is in “%(stage)s” now): there is nothing to undo.")
                    % {"stage": locked.stage.display_name},
                    "undo_stale",
                )
            moved = services.move_to_stage(
                record=record, stage=back, by=user, expected_stage_id=history.to_stage_id
            )
    except PermissionDenied:
        return _undo_refused(_("Your role may not move this record."), "permission")
    except ValidationError as exc:
        reason = " ".join(exc.messages)
        return _undo_refused(
            _("It cannot go back to “%(stage)s”: %(reason)s")
            % {"stage": back.display_name, "reason": reason},
            getattr(exc, "code", None) or "invalid",
        )
    message = _("Moved back to “%(stage)s”.") % {"stage": back.display_name}
    return MoveOutcome(MoveStatus.MOVED, message, history=moved)


def _undo_refused(message: str, code: str) -> MoveOutcome:
    return MoveOutcome(MoveStatus.REFUSED, message, code=code)
