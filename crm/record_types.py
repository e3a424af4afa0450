"""crm's record types — customers, contacts, activities, tasks — each in one spec
(crm.records), registered from CrmConfig.ready()."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .exports import (
    ExportSpec,
    activity_columns,
    attach_tags,
    contact_columns,
    customer_columns,
    task_columns,
)
from .fields.coerce import phone_coercer
from .models import Activity, Contact, Customer, Task
from .navigation import NavItem
from .records import RecordTypeSpec
from .search_rows import contact_row, customer_row
from .services.search import SearchSource

CUSTOMER = RecordTypeSpec(
    key="customer",
    model=Customer,
    owner=("owner",),
    pool=True,
    restrictable_fields=(
        "type",
        "source",
        "level",
        "industry",
        "phone",
        "email",
        "address",
        "website",
        "tags",
    ),
    custom_fields=True,
    # Phones are CharFields whose model clean() normalises them: raw values as phones.
    coercers={"phone": phone_coercer},
    search=SearchSource(
        key="customers",
        label=_("Customers"),
        model=Customer,
        name_field="name",
        email_fields=("email",),
        phone_fields=("phone",),
        select_related=("owner", "level"),
        only=(
            "name",
            "phone",
            "email",
            "owner__username",
            "owner__name",
            "level__label",
            "level__label_en",
            "level__color",
        ),
        render_row=customer_row,
        detail_url="customers:detail",
        list_url="customers:list",
        icon="building",
    ),
    export=ExportSpec(
        customer_columns,
        # Owners come from the export's lookups (everyone once), not a join per row; the
        # tag names with a query per chunk (row.export_tags).
        attach=attach_tags,
        list_view="crm.views.customers.CustomerListView",
    ),
    menu=NavItem(
        _("Customers"), "customers:list", "building", permission="customer.view", order=20
    ),
)

CONTACT = RecordTypeSpec(
    key="contact",
    model=Contact,
    owner=("customer__owner",),
    pool=True,
    restrictable_fields=(
        "title",
        "mobile",
        "phone",
        "email",
        "wechat",
        "birthday",
        "is_primary",
        "do_not_contact",
    ),
    custom_fields=True,
    coercers={"mobile": phone_coercer, "phone": phone_coercer},
    search=SearchSource(
        key="contacts",
        label=_("Contacts"),
        model=Contact,
        name_field="name",
        email_fields=("email",),
        phone_fields=("mobile", "phone"),
        select_related=("customer", "customer__owner"),
        only=(
            "name",
            "title",
            "mobile",
            "phone",
            "email",
            "do_not_contact",
            "customer__name",
            "customer__owner__username",
            "customer__owner__name",
        ),
        render_row=contact_row,
        detail_url="contacts:detail",
        parent=("customer", "customers:detail"),
        list_url="contacts:list",
        icon="address-book",
    ),
    export=ExportSpec(
        contact_columns,
        select_related=("customer",),
        list_view="crm.views.contacts.ContactListView",
    ),
    menu=NavItem(
        _("Contacts"), "contacts:list", "address-book", permission="contact.view", order=30
    ),
)

# Seen with the customer (its owner's scope, or the pool) or by its author's scope: a
# lead's activities have no customer until the lead is converted.
ACTIVITY = RecordTypeSpec(
    key="activity",
    model=Activity,
    owner=("customer__owner", "author"),
    pool=True,
    export=ExportSpec(
        activity_columns,
        select_related=("customer", "contact"),
        list_view="crm.views.activities.ActivityListView",
    ),
)

# A task is in scope through its assignee or its customer's owner.
TASK = RecordTypeSpec(
    key="task",
    model=Task,
    owner=("assignee", "customer__owner"),
    export=ExportSpec(
        task_columns,
        select_related=("customer",),
        list_view="crm.views.tasks.TaskListView",
    ),
    menu=NavItem(_("Tasks"), "tasks:list", "list-check", permission="task.view", order=70),
)
