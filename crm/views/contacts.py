"""Contact pages: the list, the detail with the contact's activities, create and edit."""

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import access

from .. import selectors
from ..filters import ContactFilter
from ..forms import ContactForm
from ..models import Contact
from ..params import id_param
from ..services import contacts as services
from ..services.customers import find_duplicates
from .base import (
    BuiltinView,
    RecordCreateView,
    RecordDetailView,
    RecordListView,
    RecordUpdateView,
)
from .rows import ContactRows

# The detail page lists this many of the contact's activities, newest first.
ACTIVITY_LIMIT = 50


class ContactListView(RecordListView):
    model = Contact
    filterset_class = ContactFilter
    template_name = "crm/contacts/list.html"
    select_related = ("customer", "customer__owner")
    sort_fields = {
        "name": "name",
        "created": "created_at",
        "customer": "customer__name",
    }
    default_sort = "name"
    count_in_order = False
    builtin_views = (
        BuiltinView("mine", gettext_lazy("My contacts"), "owner=me"),
        BuiltinView("primary", gettext_lazy("Primary contacts"), "primary=true"),
    )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["rows"] = ContactRows(hidden=self.hidden_fields)(context["object_list"])
        return context


class ContactDetailView(RecordDetailView):
    model = Contact
    template_name = "crm/contacts/detail.html"

    def get_queryset(self):
        return Contact.objects.select_related("customer__owner", "created_by")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        activities = selectors.timeline(self.request.user, self.object).select_related("kind")
        context["activities"] = list(activities[: ACTIVITY_LIMIT + 1])
        context["more_activities"] = len(context["activities"]) > ACTIVITY_LIMIT
        context["activities"] = context["activities"][:ACTIVITY_LIMIT]
        context["can_add_task"] = access.has_permission(self.request.user, "task", "add")
        return context


class ContactCreateView(RecordCreateView):
    model = Contact
    form_class = ContactForm
    template_name = "crm/contacts/form.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        customer = id_param(self.request.GET, "customer")
        default = (self.customer_return(customer) if customer else None) or reverse("contacts:list")
        context["cancel_url"] = self.safe_next(default)
        return context

    def get_initial(self):
        initial = super().get_initial()
        customer = id_param(self.request.GET, "customer")
        if customer:
            initial["customer"] = customer
        return initial

    def form_valid(self, form):
        contact = form.instance
        if self.request.POST.get("confirm_duplicate") != "1":
            duplicates = find_duplicates(
                user=self.request.user,
                name=contact.name,
                phones=[contact.mobile, contact.phone],
                email=contact.email,
            )
            if duplicates:
                return self.render_to_response(
                    self.get_context_data(form=form, duplicates=duplicates)
                )
        self.object = contact
        return self.save_through(
            form,
            lambda: services.create_contact(contact=contact, by=self.request.user),
            message=_("Contact “%(name)s” added.") % {"name": contact.name},
            success_url=lambda: (
                self.customer_return(contact.customer_id)
                or reverse("contacts:detail", args=[contact.pk])
            ),
        )


class ContactUpdateView(RecordUpdateView):
    model = Contact
    form_class = ContactForm
    template_name = "crm/contacts/form.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["cancel_url"] = self.safe_next(reverse("contacts:detail", args=[self.object.pk]))
        return context

    def form_valid(self, form):
        return self.save_through(
            form,
            lambda: services.update_contact(contact=form.instance, by=self.request.user),
            message=_("Contact “%(name)s” saved.") % {"name": form.instance},
            success_url=reverse("contacts:detail", args=[form.instance.pk]),
        )
