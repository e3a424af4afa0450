"""Forms of the lead and deal pages. Standard and custom fields with field permissions
come through CustomFieldsFormMixin (DESIGN rule 2); stages are never set by a form but
passed to pipelines.services (rule 3)."""

from __future__ import annotations

from django import forms
from django.db.models import Q, QuerySet
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.models import User
from accounts.phones import format_phone
from crm.fields.forms import CustomFieldsFormMixin
from crm.forms import StyledFormMixin, dictionary_choices, mine_first, person_label, shortlist
from crm.models import Contact, Customer, DictionaryItem
from crm.params import parse_id

from .models import (
    LOST_REASON,
    LOST_REASON_REQUIRED,
    Deal,
    Lead,
    Pipeline,
    PipelineKind,
    Stage,
    StageKind,
)


def _owner_field(form: forms.ModelForm, user, *, empty_label=None) -> None:
    field = form.fields["owner"]
    people = access.users_in_scope(user).values("pk")
    field.queryset = User.objects.filter(
        Q(pk__in=people) | Q(pk=form.instance.owner_id or 0)
    ).order_by("name", "username")
    field.label_from_instance = person_label
    field.empty_label = empty_label
    if not form.instance.pk:
        form.initial.setdefault("owner", user.pk)


def stage_choices(kind: str, *, open_only: bool = True, exclude_pipeline=None):
    """(queryset, grouped choices) of the stages of active pipelines of `kind`."""
    stages = Stage.objects.filter(pipeline__kind=kind, pipeline__is_active=True)
    if open_only:
        stages = stages.filter(kind=StageKind.OPEN)
    stages = stages.select_related("pipeline").order_by(
        "pipeline__order", "pipeline_id", "order", "id"
    )
    groups: dict[Pipeline, list] = {}
    for stage in stages:
        groups.setdefault(stage.pipeline, []).append((stage.pk, stage.display_name))
    return stages, [(p.display_name, options) for p, options in groups.items()]


class StageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


# --- Leads --------------------------------------------------------------------------------


class LeadForm(CustomFieldsFormMixin, StyledFormMixin, forms.ModelForm):
    record_type = "lead"

    class Meta:
        model = Lead
        fields = [
            "person_name",
            "company_name",
            "title",
            "phone",
            "email",
            "wechat",
            "source",
            "owner",
            "notes",
        ]
        widgets = {
            "person_name": forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
            "phone": forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        dictionary_choices(self, "source", "lead_source", self.instance.source_id)
        _owner_field(self, user, empty_label=_("Unassigned (every colleague sees it)"))
        if self.instance.pk and not self.is_bound:
            self.initial["phone"] = format_phone(self.instance.phone)
        self.apply_fields(user)


# --- Deals --------------------------------------------------------------------------------


def contacts_of(user, customer_id) -> list[Contact]:
    customer_id = parse_id(customer_id)
    if customer_id is None:
        return []
    return list(
        Contact.objects.visible_to(user)
        .filter(customer_id=customer_id)
        .order_by("-is_primary", "name", "pk")
    )


def contact_choices(user, *, current: Contact | int | None = None) -> QuerySet[Contact]:
    """The contacts a deal's contact may be picked from: those the user sees, plus the
    deal's current one (after its customer went to a colleague the owner may no longer
    see it, yet must be able to keep it). The deal form and stage moves (pipelines.moves)
    both pick from here."""
    contacts = Contact.objects.visible_to(user)
    current_id = getattr(current, "pk", current)
    if current_id:
        contacts = Contact.objects.filter(Q(pk__in=contacts.values("pk")) | Q(pk=current_id))
    return contacts


class DealForm(CustomFieldsFormMixin, StyledFormMixin, forms.ModelForm):
    """Create and edit a deal. The customer is picked from those the user may change;
    the contact must be one of the customer's; a new deal starts in the chosen open
    stage of a deal pipeline."""

    record_type = "deal"

    stage = StageChoiceField(label=_("Pipeline and stage"), queryset=Stage.objects.none())

    class Meta:
        model = Deal
        fields = ["title", "customer", "contact", "amount", "expected_close_date", "owner"]
        widgets = {
            "title": forms.TextInput(attrs={"autocomplete": "off"}),
            "amount": forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01", "min": "0"}),
            "expected_close_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        creating = self.instance.pk is None
        customer = self.fields["customer"]
        editable = Customer.objects.editable_by(user)
        if not creating:
            # The deal's own customer stays valid even if the user may only view it.
            editable = Customer.objects.filter(
                Q(pk__in=editable.values("pk")) | Q(pk=self.instance.customer_id)
            )
        customer.queryset = editable
        customer.empty_label = _("Choose a customer…")
        shortlist(self, "customer", mine_first(editable, user))
        contact = self.fields["contact"]
        current_contact = None if creating else self.instance.contact
        # Likewise the deal's own contact: after its customer went to a colleague the
        # owner may no longer see it, yet must be able to save her deal unchanged.
        contact.queryset = contact_choices(user, current=current_contact)
        contact.empty_label = _("— none —")
        chosen = (
            self.data.get(self.add_prefix("customer"))
            if self.is_bound
            else self.initial.get("customer", self.instance.customer_id)
        )
        chosen = getattr(chosen, "pk", chosen)
        options = contacts_of(user, chosen)
        if (
            current_contact is not None
            and str(chosen) == str(current_contact.customer_id)
            and current_contact not in options
        ):
            options.insert(0, current_contact)
        contact.widget.choices = [("", contact.empty_label)] + [(c.pk, str(c)) for c in options]
        _owner_field(self, user)
        if creating:
            stages, grouped = stage_choices(PipelineKind.DEAL)
            self.fields["stage"].queryset = stages
            self.fields["stage"].widget.choices = [("", _("Choose a stage…")), *grouped]
            first = (
                Pipeline.objects.for_deals().active().order_by("-is_default", "order", "id").first()
            )
            stage = first.first_open_stage() if first else None
            if stage is not None:
                self.initial.setdefault("stage", stage.pk)
        else:
            del self.fields["stage"]
        self.apply_fields(user)

    def clean(self):
        data = super().clean()
        customer, contact = data.get("customer"), data.get("contact")
        if customer is None and not self.instance.pk:
            return data
        customer_id = customer.pk if customer else self.instance.customer_id
        if contact is not None and contact.customer_id != customer_id:
            self.add_error("contact", _("The contact must belong to the deal's customer."))
        return data

    def _post_clean(self):
        stage = self.cleaned_data.get("stage")
        if stage is not None:
            self.instance.pipeline = stage.pipeline
            self.instance.stage = stage
        super()._post_clean()

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        exclude.update({"pipeline", "stage"})
        return exclude


# --- Moving, losing, changing pipeline ------------------------------------------------------


def lost_reasons():
    return DictionaryItem.objects.of("lost_reason").active().order_by("order", "id")


class LostReasonForm(StyledFormMixin, forms.Form):
    lost_reason = forms.ModelChoiceField(
        label=_("Lost reason"),
        queryset=DictionaryItem.objects.none(),
        empty_label=_("Choose a reason…"),
    )
    lost_note = forms.CharField(
        label=_("Note"), required=False, max_length=300, widget=forms.TextInput()
    )

    def __init__(self, *args, record_type: str = "deal", **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["lost_reason"]
        field.queryset = lost_reasons()
        field.label = LOST_REASON[record_type]
        field.error_messages["required"] = LOST_REASON_REQUIRED[record_type]


# --- Conversion -------------------------------------------------------------------------------


class ConvertChoiceForm(StyledFormMixin, forms.Form):
    NEW, EXISTING = "new", "existing"

    customer_mode = forms.ChoiceField(
        label=_("Customer"),
        choices=[(NEW, _("Create a new customer")), (EXISTING, _("Use an existing customer"))],
        widget=forms.RadioSelect,
        initial=NEW,
    )
    existing_customer = forms.ModelChoiceField(
        label=_("Existing customer"), queryset=Customer.objects.none(), required=False
    )
    confirm_duplicate = forms.BooleanField(
        label=_("Create it anyway: this is a different customer"), required=False
    )
    create_contact = forms.BooleanField(label=_("Create a contact"), required=False)
    create_deal = forms.BooleanField(label=_("Create a deal"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        editable = Customer.objects.editable_by(user)
        field = self.fields["existing_customer"]
        field.queryset = editable
        field.empty_label = _("Choose a customer…")
        shortlist(self, "existing_customer", mine_first(editable, user))
        for name in ("confirm_duplicate", "create_contact", "create_deal"):
            self.fields[name].widget.attrs["class"] = "form-check-input"
        self.fields["customer_mode"].widget.attrs["class"] = "form-check-input"

    def clean(self):
        data = super().clean()
        if data.get("customer_mode") == self.EXISTING and not data.get("existing_customer"):
            self.add_error("existing_customer", _("Choose the customer."))
        return data


class ConvertCustomerForm(CustomFieldsFormMixin, StyledFormMixin, forms.ModelForm):
    record_type = "customer"

    class Meta:
        model = Customer
        fields = ["name", "phone", "email"]
        widgets = {
            "phone": forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.apply_fields(user)


class ConvertContactForm(CustomFieldsFormMixin, StyledFormMixin, forms.ModelForm):
    record_type = "contact"

    class Meta:
        model = Contact
        fields = ["name", "title", "mobile", "email", "wechat"]
        widgets = {
            "mobile": forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # A person's name (姓名), not the model's generic "name" (名称).
        self.fields["name"].label = capfirst(_("full name"))
        self.apply_fields(user)

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        exclude.add("customer")  # given by the conversion
        return exclude


class ConvertDealForm(CustomFieldsFormMixin, StyledFormMixin, forms.ModelForm):
    record_type = "deal"

    stage = StageChoiceField(label=_("Pipeline and stage"), queryset=Stage.objects.none())

    class Meta:
        model = Deal
        fields = ["title", "amount", "expected_close_date"]
        widgets = {
            "amount": forms.NumberInput(attrs={"inputmode": "decimal", "step": "0.01", "min": "0"}),
            "expected_close_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        stages, grouped = stage_choices(PipelineKind.DEAL)
        self.fields["stage"].queryset = stages
        self.fields["stage"].widget.choices = [("", _("Choose a stage…")), *grouped]
        first = Pipeline.objects.for_deals().active().order_by("-is_default", "order", "id").first()
        stage = first.first_open_stage() if first else None
        if stage is not None:
            self.initial.setdefault("stage", stage.pk)
        self.apply_fields(user)

    def _post_clean(self):
        stage = self.cleaned_data.get("stage")
        if stage is not None:
            self.instance.pipeline = stage.pipeline
            self.instance.stage = stage
        super()._post_clean()

    def _get_validation_exclusions(self):
        exclude = super()._get_validation_exclusions()
        exclude.update({"pipeline", "stage", "customer", "owner"})
        return exclude
