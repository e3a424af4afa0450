"""Form helpers: every form looks the same (Tabler/Bootstrap classes)."""

from django import forms

from .widgets import style


class StyledFormMixin:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Not form.errors yet: subclasses narrow querysets after this; validating now
        # would check choices against the unrestricted ones. full_clean marks errors.
        style(self, mark_errors=False)

    def full_clean(self):
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                widget = self.fields[name].widget
                if "is-invalid" not in widget.attrs.get("class", ""):
                    widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


# --- Contacts and tasks ---------------------------------------------------------------

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When  # noqa: E402
from django.utils.translation import gettext_lazy  # noqa: E402

from accounts import access  # noqa: E402
from accounts.models import User  # noqa: E402
from accounts.phones import format_phone  # noqa: E402

from . import dates, validation  # noqa: E402
from .fields.forms import CustomFieldsFormMixin  # noqa: E402
from .models import Contact, Customer, Task  # noqa: E402
from .params import parse_id  # noqa: E402

# A select never lists more records than this; any record the field's queryset allows is
# still accepted (e.g. preselected from ?customer=).
SHORTLIST_SIZE = 300


def shortlist(form: forms.BaseForm, name: str, records) -> None:
    """Show `records` (a slice of what the field accepts) plus the current value as the
    choices of a ModelChoiceField, instead of every record the user may pick."""
    field = form.fields[name]
    rows = list(records[:SHORTLIST_SIZE])
    current = form.data.get(form.add_prefix(name)) if form.is_bound else form.initial.get(name)
    current = getattr(current, "pk", current)
    current = parse_id(current)
    if current is not None and all(r.pk != current for r in rows):
        rows = [*field.queryset.filter(pk=current), *rows]
    empty = [("", field.empty_label)] if field.empty_label is not None else []
    field.widget.choices = empty + [(r.pk, str(r)) for r in rows]


def mine_first(queryset: QuerySet, user: User) -> QuerySet:
    """Order a shortlist of owned records (customers...) with the user's own first, then by
    name: the record a rep picks is nearly always one of theirs. Forms of other apps (a
    lead's or deal's customer) use it too, so every customer select reads alike."""
    return queryset.order_by(
        Case(When(owner=user, then=Value(0)), default=Value(1), output_field=IntegerField()),
        "name",
        "pk",
    )


class ContactForm(CustomFieldsFormMixin, StyledFormMixin, forms.ModelForm):
    record_type = "contact"

    class Meta:
        model = Contact
        fields = [
            "customer",
            "name",
            "title",
            "mobile",
            "phone",
            "email",
            "wechat",
            "birthday",
            "is_primary",
            "do_not_contact",
        ]
        widgets = {
            "mobile": forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
            "phone": forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
            "birthday": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }
        error_messages = {"name": {"required": validation.CONTACT_NAME_REQUIRED}}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        editable = Customer.objects.editable_by(user)
        self.fields["customer"].queryset = editable
        self.fields["customer"].empty_label = gettext_lazy("Choose a customer…")
        shortlist(self, "customer", mine_first(editable, user))
        if self.instance.pk and not self.is_bound:
            for name in ("mobile", "phone"):
                self.initial[name] = format_phone(getattr(self.instance, name))
        self.apply_fields(user)

    def _get_validation_exclusions(self):
        # One primary contact per customer: the contact service demotes the previous
        # primary contact, so the model's constraint is no reason to reject the form.
        # (The customer itself is validated by its form field.)
        exclude = super()._get_validation_exclusions()
        exclude.add("customer")
        return exclude


class TaskForm(StyledFormMixin, forms.ModelForm):
    class Meta:
        model = Task
        fields = ["title", "notes", "due_at", "assignee", "customer"]
        widgets = {
            "notes": forms.Textarea(attrs={"rows": 3}),
            "due_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        people = access.users_in_scope(user).values("pk")
        assignee = self.fields["assignee"]
        assignee.queryset = User.objects.filter(
            Q(pk__in=people) | Q(pk=self.instance.assignee_id or 0)
        ).order_by("name", "username")
        assignee.label_from_instance = lambda u: u.get_full_name() or u.get_username()
        if not self.instance.pk:
            self.initial.setdefault("assignee", user.pk)
        visible = Customer.objects.visible_to(user)
        self.fields["customer"].queryset = visible
        self.fields["customer"].required = False
        self.fields["customer"].empty_label = gettext_lazy("No customer")
        shortlist(self, "customer", mine_first(visible, user))


# --- Customers and follow-ups -----------------------------------------------------------


from django.db.models import Q  # noqa: E402, F811
from django.forms.models import ModelChoiceIteratorValue  # noqa: E402
from django.utils import timezone as _timezone  # noqa: E402
from django.utils.text import capfirst  # noqa: E402
from django.utils.translation import gettext_lazy as _  # noqa: E402

from .models import Contact, Customer, DictionaryItem, Tag  # noqa: E402, F811

# The dictionary each customer field picks from.
# The data dictionary of follow-up kinds (call, visit, ...).
ACTIVITY_KINDS = "activity_kind"
CUSTOMER_DICTIONARIES = {
    "type": "customer_type",
    "source": "customer_source",
    "level": "customer_level",
    "industry": "industry",
}
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def dictionary_choices(form: forms.BaseForm, name: str, code: str, current_id=None) -> None:
    """Offer the active items of dictionary `code`, plus the record's current item even if
    it has been deactivated since (editing must not silently drop it)."""
    field = form.fields[name]
    condition = Q(is_active=True)
    if current_id:
        condition |= Q(pk=current_id)
    field.queryset = DictionaryItem.objects.of(code).filter(condition).order_by("order", "id")
    field.empty_label = _("— not set —")


def person_label(user) -> str:
    department = getattr(user, "department", None)
    name = user.get_full_name() or user.get_username()
    return f"{name} · {department}" if department else name


class CustomerForm(CustomFieldsFormMixin, StyledFormMixin, forms.ModelForm):
    """Create and edit a customer. The owner is chosen only on create (a transfer is its
    own action); tags are picked from the existing ones or typed as new names."""

    record_type = "customer"

    new_tags = forms.CharField(
        label=_("New tags"),
        required=False,
        max_length=300,
        help_text=_("Separate several with commas."),
        widget=forms.TextInput(attrs={"placeholder": _("e.g. 华东, 年度大单")}),
    )
    confirm_duplicate = forms.BooleanField(
        label=_("Create it anyway: this is a different customer"), required=False
    )
    website = forms.URLField(
        label=capfirst(Customer._meta.get_field("website").verbose_name),
        required=False,
        max_length=200,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
    )

    class Meta:
        model = Customer
        fields = [
            "name",
            "type",
            "level",
            "source",
            "industry",
            "phone",
            "email",
            "website",
            "address",
            "tags",
            "owner",
        ]
        widgets = {
            "name": forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
            "phone": forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
            "tags": forms.CheckboxSelectMultiple,
        }
        error_messages = {"name": {"required": validation.CUSTOMER_NAME_REQUIRED}}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        creating = self.instance.pk is None
        for name, code in CUSTOMER_DICTIONARIES.items():
            dictionary_choices(self, name, code, getattr(self.instance, f"{name}_id"))
        self.fields["tags"].queryset = Tag.objects.order_by("name")
        self.fields["tags"].required = False
        if creating:
            owner = self.fields["owner"]
            owner.queryset = access.users_in_scope(user).order_by("name", "username")
            owner.empty_label = _("Public pool (no owner)")
            owner.label_from_instance = person_label
            self.initial.setdefault("owner", user.pk)
            defaults = DictionaryItem.objects.filter(
                dictionary__code__in=CUSTOMER_DICTIONARIES.values(), is_default=True, is_active=True
            ).values_list("dictionary__code", "pk")
            by_code = dict(defaults)
            for name, code in CUSTOMER_DICTIONARIES.items():
                if code in by_code:
                    self.initial.setdefault(name, by_code[code])
        else:
            del self.fields["owner"]
            if not self.is_bound:
                self.initial["phone"] = format_phone(self.instance.phone)
        self.fields["confirm_duplicate"].widget.attrs["class"] = "form-check-input"
        self.fields["tags"].widget.attrs["class"] = "form-selectgroup-input"
        self.apply_fields(user)
        if "tags" not in self.fields or self.fields["tags"].disabled:
            del self.fields["new_tags"]

    def clean_new_tags(self) -> list[str]:
        return validation.tag_names(self.cleaned_data.get("new_tags") or "")

    def chosen_tags(self) -> list:
        """Picked tags plus typed new names (created by the service on save)."""
        if "tags" not in self.fields or self.fields["tags"].disabled:
            return None  # the service leaves the tags as they are
        return [*self.cleaned_data.get("tags", ()), *self.cleaned_data.get("new_tags", ())]


class ActivityForm(StyledFormMixin, forms.Form):
    """Log a follow-up (跟进记录) on a customer, optionally planning the next one."""

    kind = forms.ModelChoiceField(
        label=_("Kind"), queryset=DictionaryItem.objects.none(), empty_label=None
    )
    contact = forms.ModelChoiceField(
        label=_("Contact"),
        queryset=Contact.objects.none(),
        required=False,
        empty_label=_("— none —"),
    )
    content = forms.CharField(
        label=_("What happened"),
        max_length=validation.ACTIVITY_CONTENT_MAX,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": _("Who you spoke to, what was agreed, next steps…")}
        ),
        error_messages={"required": validation.ACTIVITY_CONTENT_REQUIRED},
    )
    occurred_at = dates.DateTimeField(
        label=_("When"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    next_follow_up_at = dates.DateTimeField(
        label=_("Next follow-up"),
        required=False,
        help_text=_("Creates a task for the owner."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )

    def __init__(self, *args, customer, user, contacts=None, kinds=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.customer = customer
        field = self.fields["kind"]
        field.queryset = DictionaryItem.objects.of("activity_kind").active().order_by("order", "id")
        # Rendered as icon buttons: load the kinds once, keep each item for its icon. A page
        # that has the dictionary items loaded passes them (`kinds`: the active ones, in
        # order) and saves the query.
        kinds = field.queryset if kinds is None else kinds
        field.widget.choices = [(ModelChoiceIteratorValue(k.pk, k), str(k)) for k in kinds]
        if not access.has_permission(user, "task", "add"):
            # A planned follow-up becomes a task: a role that may not add tasks (customer
            # service) logs what happened, and plans nothing.
            del self.fields["next_follow_up_at"]
        contact = self.fields["contact"]
        contact.queryset = Contact.objects.visible_to(user).filter(customer=customer)
        if contacts is not None:
            # The page has the contacts loaded already: no second query to render them.
            contact.widget.choices = [("", contact.empty_label)] + [
                (c.pk, str(c)) for c in contacts
            ]
        if not self.is_bound:
            self.initial.setdefault(
                "occurred_at", _timezone.localtime().replace(second=0, microsecond=0)
            )

    def clean(self):
        data = super().clean()
        try:
            validation.check_activity_times(data.get("occurred_at"), data.get("next_follow_up_at"))
        except forms.ValidationError as exc:
            self.add_error(None, exc)
        return data


class TaskOutcomeForm(ActivityForm):
    """How a follow-up task went (跟进结果): what happened, its kind and, optionally, when
    to follow up next. Saved by crm.services.tasks.complete_follow_up; the follow-up is
    logged as happening now, with the task's contact when the task is about one."""

    def __init__(self, *args, task: Task, user, **kwargs):
        kwargs.setdefault("prefix", f"outcome-{task.pk}")
        super().__init__(*args, customer=task.customer, user=user, **kwargs)
        self.task = task
        del self.fields["contact"], self.fields["occurred_at"]
        self.fields["content"].widget.attrs["rows"] = 2
        if "next_follow_up_at" in self.fields:
            self.fields["next_follow_up_at"].help_text = _("Plans the next follow-up task.")

    def clean(self):
        data = forms.Form.clean(self)
        try:
            validation.check_activity_times(_timezone.now(), data.get("next_follow_up_at"))
        except forms.ValidationError as exc:
            self.add_error(None, exc)
        return data


# --- The task calendar ------------------------------------------------------------------

CALENDAR_WEEK, CALENDAR_MONTH = "week", "month"


class TaskCalendarForm(forms.Form):
    """The calendar's own parameters (?view=week|month&date=YYYY-MM-DD); the list's
    filters come with them and are read by the list's filter set."""

    view = forms.ChoiceField(
        choices=[(CALENDAR_WEEK, _("Week")), (CALENDAR_MONTH, _("Month"))], required=False
    )
    date = dates.DateField(required=False)
