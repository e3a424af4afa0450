"""Lead pages: the list, the detail (stage guide and path, moving, follow-ups, tasks,
history), create and edit, losing a lead and converting it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from accounts import access
from accounts.phones import format_phone
from crm.models import Customer
from crm.params import id_param
from crm.services.customers import find_duplicates
from crm.views.base import (
    BuiltinView,
    BulkAction,
    RecordCreateView,
    RecordListView,
    RecordUpdateView,
)
from crm.views.bulk import Tally
from crm.views.exports import RecordExportView

from .. import services
from ..filters import LeadFilter
from ..forms import (
    ConvertChoiceForm,
    ConvertContactForm,
    ConvertCustomerForm,
    ConvertDealForm,
    LeadForm,
    LostReasonForm,
)
from ..models import Lead, LeadStatus
from .common import (
    LogActivityView,
    StagedRecordDetailView,
    StageMoveView,
    owners_context,
    transfer,
)
from .rows import LeadRows


def claim(queryset, user, request):
    """Bulk action: take the unassigned leads among the selected ones."""
    tally = Tally(request, queryset)
    tally.add(_("have an owner"), queryset.filter(owner__isnull=False).count())
    count = len(services.claim_leads(queryset, by=user))
    return tally.message(
        count,
        done_text=_("%(count)s leads claimed.") % {"count": count},
        not_done=_("%(count)s not claimed"),
    )


class LeadListView(RecordListView):
    model = Lead
    filterset_class = LeadFilter
    template_name = "pipelines/leads/list.html"
    select_related = ("owner", "stage")
    dictionary_fields = ("source",)
    sort_fields = {
        "created": "created_at",
        "name": "company_name",
        "stage": "stage__order",
        "in_stage": "stage_entered_at",
        "updated": "updated_at",
    }
    default_sort = "-created"
    builtin_views = (
        BuiltinView("mine", gettext_lazy("My leads"), "owner=me"),
        BuiltinView("unassigned", gettext_lazy("Unassigned"), "owner=pool"),
        BuiltinView("overdue", gettext_lazy("Stuck past the time limit"), "overdue=true"),
    )
    bulk_actions = (
        BulkAction("transfer", gettext_lazy("Transfer to…"), transfer),
        BulkAction("claim", gettext_lazy("Claim"), claim),
    )

    def list_defaults(self, queryset):
        if not self.request.GET.get("status"):
            queryset = queryset.filter(status=LeadStatus.OPEN)  # the list's default
        return queryset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["owners"] = owners_context(self.request, context["bulk_actions"])
        context["rows"] = LeadRows(
            hidden=self.hidden_fields,
            bulk=bool(context["bulk_actions"]),
            custom=bool(self.custom_columns),
        )(context["object_list"])
        return context


class LeadExportView(RecordExportView):
    """The lead list as filtered, as CSV or Excel (the lead spec's columns)."""

    list_view = LeadListView
    list_url = "leads:list"


class LeadDetailMixin:
    model = Lead
    template_name = "pipelines/leads/detail.html"
    select_related = (
        "stage",
        "pipeline",
        "owner",
        "created_by",
        "converted_customer",
        "converted_contact",
        "converted_deal",
    )

    def dictionary_fields(self):
        return ("source", "lost_reason")

    def activity_customer(self):
        # A converted lead's follow-ups belong to the customer it became.
        return self.object.converted_customer

    def move_targets(self, record):
        if record.status == LeadStatus.CONVERTED:
            return []
        return super().move_targets(record)

    def get_context_data(self, lose_form=None, **kwargs):
        context = super().get_context_data(lose_form=lose_form, **kwargs)
        record = self.object
        context["can_convert"] = context["can_change"] and record.status == LeadStatus.OPEN
        context["can_claim"] = record.owner_id is None and access.has_permission(
            self.request.user, "lead", "change"
        )
        if context["can_convert"] and lose_form is None:
            context["lose_form"] = LostReasonForm(record_type="lead")
        return context


class LeadDetailView(LeadDetailMixin, StagedRecordDetailView):
    pass


class LeadMoveView(LeadDetailMixin, StageMoveView):
    pass


class LeadLogActivityView(LeadDetailMixin, LogActivityView):
    pass


class LeadLoseView(LeadDetailMixin, StagedRecordDetailView):
    """Mark a lead as lost: a reason from the lost_reason dictionary is required."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.object = lead = self.get_object()
        if not access.can(request.user, lead, "change"):
            raise PermissionDenied
        form = LostReasonForm(request.POST, record_type="lead")
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(lose_form=form))
        try:
            services.lose_lead(
                lead=lead,
                by=request.user,
                reason=form.cleaned_data["lost_reason"],
                note=form.cleaned_data.get("lost_note", ""),
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
            return self.render_to_response(self.get_context_data(lose_form=form))
        messages.success(request, _("The lead was marked as lost."))
        return HttpResponseRedirect(reverse("leads:detail", args=[lead.pk]))


class LeadClaimView(LoginRequiredMixin, View):
    """POST: take an unassigned lead (services.claim_lead)."""

    http_method_names = ["post"]

    def post(self, request, pk):
        lead = access.get_object_for_user_or_404(request.user, Lead, pk=pk)
        if not access.has_permission(request.user, "lead", "change"):
            raise PermissionDenied
        try:
            services.claim_lead(lead=lead, by=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request, _("“%(name)s” is now your lead.") % {"name": lead.display_name}
            )
        return redirect("leads:detail", lead.pk)


class LeadFormMixin:
    model = Lead
    form_class = LeadForm
    template_name = "pipelines/leads/form.html"


class LeadCreateView(LeadFormMixin, RecordCreateView):
    def form_valid(self, form):
        lead = form.instance
        self.object = lead
        return self.save_through(
            form,
            lambda: services.create_lead(lead=lead, by=self.request.user),
            message=_("Lead “%(name)s” created.") % {"name": lead.display_name},
            success_url=lambda: reverse("leads:detail", args=[lead.pk]),
        )


class LeadUpdateView(LeadFormMixin, RecordUpdateView):
    def form_valid(self, form):
        lead = form.instance
        return self.save_through(
            form,
            lambda: services.update_lead(lead=lead, by=self.request.user),
            message=_("Changes saved."),
            success_url=reverse("leads:detail", args=[lead.pk]),
        )


# --- Conversion ---------------------------------------------------------------------------


class LeadConvertView(LoginRequiredMixin, TemplateView):
    """Turn an open lead into a customer (new, with the duplicate check, or an existing
    one the user may change), optionally a contact and a deal, through
    services.convert_lead."""

    template_name = "pipelines/leads/convert.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        user = request.user
        self.lead = access.get_object_for_user_or_404(
            user, Lead.objects.select_related("owner", "stage", "pipeline"), pk=kwargs["pk"]
        )
        if not access.can(user, self.lead, "change"):
            raise PermissionDenied
        if self.lead.status != LeadStatus.OPEN:
            messages.info(request, _("Only an open lead can be converted."))
            return HttpResponseRedirect(reverse("leads:detail", args=[self.lead.pk]))
        return super().dispatch(request, *args, **kwargs)

    def lead_name(self) -> str:
        lead = self.lead
        return lead.company_name or lead.person_name or format_phone(lead.phone) or lead.email

    def forms(self, data=None) -> dict:
        user, lead = self.request.user, self.lead
        phone = format_phone(lead.phone)
        choice_initial = {"create_contact": bool(lead.person_name)}
        picked = id_param(self.request.GET, "customer")
        if picked:
            choice_initial.update(customer_mode="existing", existing_customer=picked)
        return {
            "choice_form": ConvertChoiceForm(data, user=user, initial=choice_initial, prefix="c"),
            "customer_form": ConvertCustomerForm(
                data,
                user=user,
                prefix="customer",
                initial={"name": self.lead_name(), "phone": phone, "email": lead.email},
            ),
            "contact_form": ConvertContactForm(
                data,
                user=user,
                prefix="contact",
                initial={
                    "name": lead.person_name,
                    "title": lead.title,
                    "mobile": phone,
                    "email": lead.email,
                    "wechat": lead.wechat,
                },
            ),
            "deal_form": ConvertDealForm(
                data, user=user, prefix="deal", initial={"title": self.lead_name()}
            ),
        }

    def duplicates(self, name, phones, email) -> tuple[list, list]:
        """Possible duplicates, and the customers among them (or of the contacts among
        them) this user may convert the lead into."""
        found = find_duplicates(
            user=self.request.user, name=name, phones=phones, email=email, similar=True
        )
        ids = {d.record.customer_id if d.is_contact else d.record.pk for d in found if d.visible}
        usable = (
            list(
                Customer.objects.editable_by(self.request.user).filter(pk__in=ids).order_by("name")
            )
            if ids
            else []
        )
        return found, usable

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("lead", self.lead)
        context.setdefault("record", self.lead)
        return context

    def get(self, request, *args, **kwargs):
        lead = self.lead
        duplicates, usable = self.duplicates(self.lead_name(), [lead.phone], lead.email)
        return self.render_to_response(
            self.get_context_data(**self.forms(), duplicates=duplicates, usable=usable)
        )

    def post(self, request, *args, **kwargs):
        forms = self.forms(request.POST)
        choice = forms["choice_form"]
        valid = choice.is_valid()
        data = choice.cleaned_data if valid else {}
        new_customer = data.get("customer_mode") == ConvertChoiceForm.NEW
        checks = [choice]
        if new_customer:
            checks.append(forms["customer_form"])
        if data.get("create_contact"):
            checks.append(forms["contact_form"])
        if data.get("create_deal"):
            checks.append(forms["deal_form"])
        valid = all([form.is_valid() for form in checks])  # noqa: C419 - validate every form
        context = {**forms, "duplicates": [], "usable": []}
        if not valid:
            return self.render_to_response(self.get_context_data(**context))
        user, lead = request.user, self.lead
        if new_customer:
            customer = forms["customer_form"].save(commit=False)
            customer.owner = lead.owner or user
            if not data.get("confirm_duplicate"):
                duplicates, usable = self.duplicates(
                    customer.name, [customer.phone], customer.email
                )
                if duplicates:
                    context.update(duplicates=duplicates, usable=usable, confirm_needed=True)
                    return self.render_to_response(self.get_context_data(**context))
        else:
            customer = data["existing_customer"]
        contact = forms["contact_form"].save(commit=False) if data.get("create_contact") else None
        deal = forms["deal_form"].save(commit=False) if data.get("create_deal") else None
        if deal is not None:
            deal.owner = lead.owner or user
        try:
            conversion = services.convert_lead(
                lead=lead, by=user, customer=customer, contact=contact, deal=deal
            )
        except ValidationError as exc:
            choice.add_error(None, exc.messages)
            return self.render_to_response(self.get_context_data(**context))
        messages.success(
            request,
            _("The lead was converted into the customer “%(name)s”.")
            % {"name": conversion.customer.name},
        )
        return HttpResponseRedirect(self.next_page(conversion))

    def next_page(self, conversion) -> str:
        """Where the work goes on: the new deal, else the customer (the lead's page if
        the user may open neither)."""
        user = self.request.user
        if conversion.deal is not None and access.can(user, conversion.deal, "view"):
            return reverse("deals:detail", args=[conversion.deal.pk])
        if access.can(user, conversion.customer, "view"):
            return reverse("customers:detail", args=[conversion.customer.pk])
        return reverse("leads:detail", args=[self.lead.pk])
