"""What automation needs to know of each record type it acts on: the model, whose the
record is, how to name and link it, and how it is saved again after a change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.urls import NoReverseMatch, reverse

from crm.models import Contact, Customer, Task
from crm.services import contacts as contact_services
from crm.services import customers as customer_services
from crm.services import tasks as task_services
from pipelines import services as pipeline_services
from pipelines.models import Deal, Lead


@dataclass(frozen=True)
class AutomatedType:
    key: str
    model: type[models.Model]
    owner_path: str  # "owner", "customer__owner", "assignee"
    url_name: str
    save: Callable[[Any, Any], Any]  # save(record, by): the type's update service
    select_related: tuple[str, ...] = ()

    def owner(self, record) -> Any:
        obj = record
        for part in self.owner_path.split("__"):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj

    def customer(self, record) -> Customer | None:
        if isinstance(record, Customer):
            return record
        return getattr(record, "customer", None)

    def url(self, record) -> str:
        try:
            return reverse(self.url_name, args=[record.pk])
        except NoReverseMatch:
            return ""


def _label(record) -> str:
    return str(getattr(record, "display_name", None) or record)[:200]


TYPES: dict[str, AutomatedType] = {
    "customer": AutomatedType(
        "customer",
        Customer,
        "owner",
        "customers:detail",
        lambda record, by: customer_services.update_customer(customer=record, by=by),
        ("owner",),
    ),
    "contact": AutomatedType(
        "contact",
        Contact,
        "customer__owner",
        "contacts:detail",
        lambda record, by: contact_services.update_contact(contact=record, by=by),
        ("customer__owner",),
    ),
    "lead": AutomatedType(
        "lead",
        Lead,
        "owner",
        "leads:detail",
        lambda record, by: pipeline_services.update_lead(lead=record, by=by),
        ("owner", "stage", "pipeline"),
    ),
    "deal": AutomatedType(
        "deal",
        Deal,
        "owner",
        "deals:detail",
        lambda record, by: pipeline_services.update_deal(deal=record, by=by),
        ("owner", "stage", "pipeline", "customer"),
    ),
    "task": AutomatedType(
        "task",
        Task,
        "assignee",
        "tasks:detail",
        lambda record, by: task_services.update_task(task=record, by=by),
        ("assignee", "customer"),
    ),
}


def automated_type(key: str) -> AutomatedType:
    return TYPES[key]


def type_of(record) -> AutomatedType:
    for spec in TYPES.values():
        if isinstance(record, spec.model):
            return spec
    raise LookupError(type(record).__name__)


def load(record_type: str, record_id: int):
    """The record, or None when it is gone."""
    spec = TYPES[record_type]
    return spec.model.objects.select_related(*spec.select_related).filter(pk=record_id).first()


def label(record) -> str:
    return _label(record)


def is_staged(record_type: str) -> bool:
    return record_type in ("lead", "deal")
