"""What the API offers of each record type: one `ApiSpec` per type, read by the viewset
and serializer factories (integrations/api/records/views.py, serializers.py).

A spec names only what the record-type registry (`crm.records`) does not already say:
the URL, which standard fields are shown and which a create or an edit may set, and the
services that write. Everything else is derived once, for every type alike:

- who sees what: `Model.objects.visible_to(user)` / `editable_by(user)` (accounts.access);
- the list's filters, defaults and related rows: the type's list page
  (`crm.views.exports.list_view_for(key)`: its FilterSet, `list_defaults`,
  `select_related`, `prefetch_related`, `dictionary_fields`);
- field permissions: `accounts.access.hidden_fields` / `readonly_fields`;
- raw values: `crm.fields.coerce.coerce_value` (standard fields and "cf_<key>");
- custom fields: the type's spec (`custom_fields=True`) and `crm.fields.schema`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext

from crm.models import Activity, Customer
from crm.services import activities as activity_services
from crm.services import contacts as contact_services
from crm.services import customers as customer_services
from crm.services import tasks as task_services
from pipelines import services as pipeline_services

# save(instance, user, extra) -> the saved instance. `extra` holds what is not set on the
# instance itself: tag names (None: leave the tags as they are).
Save = Callable[[models.Model, Any, dict[str, Any]], models.Model]


@dataclass(frozen=True)
class ApiSpec:
    """One record type's endpoints at /api/v1/<path>/."""

    key: str  # the record type (crm.records), e.g. "customer"
    path: str  # the URL segment, e.g. "customers"
    # Standard fields in responses, in order (hidden ones are left out per user).
    fields: tuple[str, ...]
    # Fields a create and an update may set (besides `custom` when the type has them).
    writable: tuple[str, ...] = ()
    # Fields only a create may set (a customer's owner: later a transfer; a deal's
    # pipeline and first stage: later a move).
    create_only: tuple[str, ...] = ()
    # Fields a create fills with the requesting user when not given (as the pages'
    # forms do); given as null they stay empty (a customer for the public pool).
    default_to_user: tuple[str, ...] = ()
    # Fields a create and a PUT must be given (the schema marks them required): the
    # services read some of them (a contact's customer) before any validation.
    required: tuple[str, ...] = ()
    create: Save | None = None
    update: Save | None = None  # None: PUT and PATCH answer 405
    # Extra actions, by name, each a detail route POST /<path>/<id>/<action>/
    # (integrations/api/records/actions.py).
    actions: tuple[str, ...] = ()
    # Fields a write may never set, and why (the stage: only through `move`).
    refused: dict[str, str] = field(default_factory=dict)
    # Relations a write may only point at these rows of, as the page's form offers them
    # (a contact's customer: one the user may change); the record's current one stays
    # valid. name -> rows(user).
    limit_to: dict[str, Callable[[Any], models.QuerySet]] = field(default_factory=dict)

    @property
    def model(self) -> type[models.Model]:
        from crm.records import record_type_spec

        return record_type_spec(self.key).model

    @property
    def has_custom(self) -> bool:
        from crm.records import record_type_spec

        return record_type_spec(self.key).custom_fields


def _create_customer(customer: Customer, user, extra: dict) -> Customer:
    return customer_services.create_customer(customer=customer, by=user, tags=extra.get("tags"))


def _update_customer(customer: Customer, user, extra: dict) -> Customer:
    return customer_services.update_customer(customer=customer, by=user, tags=extra.get("tags"))


def _editable_customers(user) -> models.QuerySet:
    return Customer.objects.editable_by(user)


def _by_service(service: Callable[..., models.Model], name: str) -> Save:
    """A spec's save that hands the record to a service taking it as `name` and `by`
    (contact_services.create_contact(contact=..., by=...), pipelines' create_deal...)."""

    def save(record: models.Model, user, extra: dict[str, Any]) -> models.Model:
        return service(**{name: record}, by=user)

    return save


def _log_activity(activity: Activity, user, extra: dict) -> Activity:
    if activity.customer is None:
        # The API logs follow-ups on customers (a lead's or deal's: on its page).
        raise ValidationError({"customer": gettext("This field is required.")})
    if activity.contact is not None and activity.contact.customer_id != activity.customer_id:
        # The page offers the customer's contacts only (the service would say 403).
        raise ValidationError(
            {
                "contact": gettext(
                    "Select a valid choice. That choice is not one of the available choices."
                )
            }
        )
    return activity_services.log_activity(
        customer=activity.customer,
        by=user,
        kind=activity.kind,
        content=activity.content,
        occurred_at=activity.occurred_at,
        contact=activity.contact,
        next_follow_up_at=activity.next_follow_up_at,
    )


STAGE_BY_MOVE = "stage"
STAGED_REFUSED = {
    "stage": STAGE_BY_MOVE,
    "status": STAGE_BY_MOVE,
    "lost_reason": STAGE_BY_MOVE,
    "lost_note": STAGE_BY_MOVE,
    "closed_at": STAGE_BY_MOVE,
    "stage_entered_at": STAGE_BY_MOVE,
}

CUSTOMER = ApiSpec(
    key="customer",
    path="customers",
    fields=(
        "name",
        "owner",
        "type",
        "level",
        "source",
        "industry",
        "phone",
        "email",
        "website",
        "address",
        "tags",
        "last_activity_at",
        "next_follow_up_at",
        "released_at",
        "created_by",
        "created_at",
        "updated_at",
    ),
    writable=(
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
    ),
    create_only=("owner",),
    default_to_user=("owner",),
    required=("name",),
    create=_create_customer,
    update=_update_customer,
    actions=("claim", "release", "transfer"),
    refused={"owner": "transfer"},
)

CONTACT = ApiSpec(
    key="contact",
    path="contacts",
    fields=(
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
        "created_by",
        "created_at",
        "updated_at",
    ),
    writable=(
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
    ),
    required=("customer", "name"),
    create=_by_service(contact_services.create_contact, "contact"),
    update=_by_service(contact_services.update_contact, "contact"),
    limit_to={"customer": _editable_customers},
)

ACTIVITY = ApiSpec(
    key="activity",
    path="activities",
    fields=(
        "customer",
        "contact",
        "kind",
        "content",
        "occurred_at",
        "author",
        "next_follow_up_at",
        "subject_type",
        "subject_id",
        "created_at",
    ),
    create_only=("customer", "contact", "kind", "content", "occurred_at", "next_follow_up_at"),
    required=("customer", "content"),
    create=_log_activity,
)

TASK = ApiSpec(
    key="task",
    path="tasks",
    fields=(
        "title",
        "notes",
        "due_at",
        "assignee",
        "status",
        "completed_at",
        "customer",
        "subject_type",
        "subject_id",
        "activity",
        "created_by",
        "created_at",
    ),
    writable=("title", "notes", "due_at", "assignee", "customer"),
    default_to_user=("assignee",),
    required=("title",),
    create=_by_service(task_services.create_task, "task"),
    update=_by_service(task_services.update_task, "task"),
    actions=("complete", "reopen"),
    refused={"status": "complete"},
)

LEAD = ApiSpec(
    key="lead",
    path="leads",
    fields=(
        "person_name",
        "company_name",
        "title",
        "phone",
        "email",
        "wechat",
        "source",
        "owner",
        "notes",
        "pipeline",
        "stage",
        "stage_entered_at",
        "status",
        "lost_reason",
        "lost_note",
        "closed_at",
        "converted_customer",
        "converted_contact",
        "converted_deal",
        "created_by",
        "created_at",
        "updated_at",
    ),
    writable=(
        "person_name",
        "company_name",
        "title",
        "phone",
        "email",
        "wechat",
        "source",
        "owner",
        "notes",
    ),
    create_only=("pipeline", "stage"),
    default_to_user=("owner",),
    create=_by_service(pipeline_services.create_lead, "lead"),
    update=_by_service(pipeline_services.update_lead, "lead"),
    actions=("move", "convert", "claim", "release", "transfer"),
    refused={**STAGED_REFUSED, "pipeline": STAGE_BY_MOVE},
)

DEAL = ApiSpec(
    key="deal",
    path="deals",
    fields=(
        "title",
        "customer",
        "contact",
        "amount",
        "expected_close_date",
        "probability",
        "owner",
        "pipeline",
        "stage",
        "stage_entered_at",
        "status",
        "lost_reason",
        "lost_note",
        "closed_at",
        "created_by",
        "created_at",
        "updated_at",
    ),
    writable=("title", "customer", "contact", "amount", "expected_close_date", "owner"),
    create_only=("pipeline", "stage"),
    default_to_user=("owner",),
    required=("title", "customer"),
    create=_by_service(pipeline_services.create_deal, "deal"),
    update=_by_service(pipeline_services.update_deal, "deal"),
    limit_to={"customer": _editable_customers},
    actions=("move", "transfer"),
    refused={**STAGED_REFUSED, "pipeline": STAGE_BY_MOVE, "probability": STAGE_BY_MOVE},
)

API_SPECS: tuple[ApiSpec, ...] = (CUSTOMER, CONTACT, ACTIVITY, TASK, LEAD, DEAL)
