"""Leads and deals, each in one spec (crm.records), registered from
PipelinesConfig.ready(): their access rules, field permissions and custom fields, how raw
values of their fields are read, search group, list export, menu entry, the customer
page's deal card, the pipelines' configuration (both types'), merge participants and demo
records."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from crm.exports import ExportSpec
from crm.navigation import NavItem
from crm.records import RecordTypeSpec
from crm.services.search import SearchSource

from . import config
from .cards import CUSTOMER_DEALS_CARD
from .demo import seed_for_demo
from .exports import deal_columns, lead_columns
from .fields import DEAL_COERCERS, LEAD_COERCERS
from .merge import CONVERTED_LEADS, DEALS
from .models import Deal, Lead
from .search_rows import deal_row, lead_row

# The configuration of the pipelines, which leads and deals both stand in: named by
# both specs, registered once.
PIPELINES_CONFIG = {
    "config_models": config.CONFIG_MODELS,
    "config_sections": (config.CONFIG_SECTION,),
    "document_sections": (config.DOCUMENT_SECTION,),
    "impact": (config.stages_requiring,),
    # Leads and deals are seeded together: converted leads become the demo deals.
    "demo_seeder": seed_for_demo,
}

LEAD = RecordTypeSpec(
    key="lead",
    model=Lead,
    owner=("owner",),
    # Unassigned leads (no owner) are seen by everyone who may view leads.
    pool=True,
    restrictable_fields=(
        "person_name",
        "company_name",
        "title",
        "phone",
        "email",
        "wechat",
        "source",
        "notes",
    ),
    custom_fields=True,
    coercers=LEAD_COERCERS,
    search=SearchSource(
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
        render_row=lead_row,
        detail_url="leads:detail",
        list_url="leads:list",
        icon="user-circle",
    ),
    export=ExportSpec(
        lead_columns,
        select_related=("owner", "stage", "pipeline"),
        list_view="pipelines.views.leads.LeadListView",
    ),
    menu=NavItem(_("Leads"), "leads:list", "user-circle", permission="lead.view", order=40),
    merge_participants=(CONVERTED_LEADS,),
    **PIPELINES_CONFIG,
)

DEAL = RecordTypeSpec(
    key="deal",
    model=Deal,
    owner=("owner",),
    restrictable_fields=("amount", "expected_close_date", "contact", "lost_reason"),
    custom_fields=True,
    coercers=DEAL_COERCERS,
    search=SearchSource(
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
        render_row=deal_row,
        detail_url="deals:detail",
        parent=("customer", "customers:detail"),
        list_url="deals:list",
        icon="briefcase",
    ),
    export=ExportSpec(
        deal_columns,
        select_related=("owner", "stage", "pipeline", "customer", "contact"),
        list_view="pipelines.views.deals.DealListView",
    ),
    menu=NavItem(_("Deals"), "deals:list", "briefcase", permission="deal.view", order=50),
    cards=(CUSTOMER_DEALS_CARD,),
    merge_participants=(DEALS,),
    **PIPELINES_CONFIG,
)
