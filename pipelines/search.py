"""Leads and deals in the one search (/search/): crm.services.search takes record types
from other apps through `register` (crm never imports pipelines)."""

from django.utils.translation import gettext_lazy as _

from crm.services.search import SearchSource, register

from .models import Deal, Lead

register(
    SearchSource(
        key="leads",
        label=_("Leads"),
        model=Lead,
        name_field="company_name",
        # The person's name is matched like a name (icontains), ranked after the company.
        email_fields=("person_name", "email"),
        phone_fields=("phone",),
        select_related=("owner", "stage"),
        only=(
            "person_name",
            "company_name",
            "phone",
            "email",
            "status",
            "owner__username",
            "owner__name",
            "stage__name",
            "stage__name_en",
            "stage__color",
        ),
        row_template="pipelines/search/lead_row.html",
        detail_url="leads:detail",
        list_url="leads:list",
        icon="user-circle",
    )
)
register(
    SearchSource(
        key="deals",
        label=_("Deals"),
        model=Deal,
        name_field="title",
        select_related=("customer", "owner", "stage"),
        only=(
            "title",
            "amount",
            "status",
            "customer__name",
            "owner__username",
            "owner__name",
            "stage__name",
            "stage__name_en",
            "stage__color",
        ),
        row_template="pipelines/search/deal_row.html",
        detail_url="deals:detail",
        parent=("customer", "customers:detail"),
        list_url="deals:list",
        icon="briefcase",
    )
)
