"""Writing planned rows: through each record type's services, or in bulk for customers.

A row goes through the service the form uses (`create_customer`, `update_contact`,
`create_deal`, `log_activity`...), inside a savepoint, so a row the service refuses is
that row's error and the batch goes on. New customers — the bulk of every migration —
take a faster path that writes what `create_customer` writes (the record, its tags, its
"created" event with every value) in three inserts per batch; tests/test_imports.py
holds the two paths to the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from crm import bulk
from crm.models import Customer, EventKind
from crm.services import activities, contacts, customers
from crm.services.history import Changes, record_changes, snapshot
from pipelines import services as pipeline_services

from .engine import Action, Row

Writer = Callable[[Row, Any], Any]


def _tags(row: Row):
    return row.values.get("tags") if "tags" in row.values else None


def _create_customer(row: Row, by) -> Any:
    return customers.create_customer(customer=row.record, by=by, tags=_tags(row) or ())


def _update_customer(row: Row, by) -> Any:
    return customers.update_customer(customer=row.record, by=by, tags=_tags(row))


def _create_contact(row: Row, by) -> Any:
    return contacts.create_contact(contact=row.record, by=by)


def _update_contact(row: Row, by) -> Any:
    return contacts.update_contact(contact=row.record, by=by)


def _create_staged(row: Row, by) -> Any:
    record = row.record
    if record.__class__.__name__ == "Deal":
        return pipeline_services.create_deal(deal=record, by=by)
    return pipeline_services.create_lead(lead=record, by=by)


def _update_staged(row: Row, by) -> Any:
    record = row.record
    if record.__class__.__name__ == "Deal":
        return pipeline_services.update_deal(deal=record, by=by)
    return pipeline_services.update_lead(lead=record, by=by)


def _create_activity(row: Row, by) -> Any:
    record = row.record
    return activities.log_activity(
        customer=record.customer if record.customer_id else None,
        by=by,
        kind=record.kind,
        content=record.content,
        occurred_at=record.occurred_at,
        contact=record.contact if record.contact_id else None,
        author=record.author if record.author_id else None,
    )


WRITERS: dict[str, dict[str, Writer]] = {
    "customer": {Action.CREATE: _create_customer, Action.UPDATE: _update_customer},
    "contact": {Action.CREATE: _create_contact, Action.UPDATE: _update_contact},
    "lead": {Action.CREATE: _create_staged, Action.UPDATE: _update_staged},
    "deal": {Action.CREATE: _create_staged, Action.UPDATE: _update_staged},
    "activity": {Action.CREATE: _create_activity},
}


def write_row(record_type: str, row: Row, by) -> str | None:
    """Write one row through its service in a savepoint; its error message, or None."""
    writer = WRITERS[record_type].get(row.action)
    if writer is None:
        return None
    try:
        with transaction.atomic():
            writer(row, by)
    except ValidationError as exc:
        return " ".join(exc.messages)
    except PermissionDenied:
        return str(_denied())
    return None


def _denied():
    from django.utils.translation import gettext as _

    return _("You may not make this change.")


# --- New customers in bulk ---------------------------------------------------------------------


def _created_changes(customer: Customer, tag_ids: list[int]) -> Changes:
    """What `history.created` records for a new customer, without a query per row."""
    names = [f.name for f in Customer._meta.concrete_fields] + [
        f"cf_{key}" for key in (customer.custom or {})
    ]
    values = snapshot(customer, only=names, display=False).raw
    raw = {k: [None, v] for k, v in values.items() if v not in (None, "", [])}
    if tag_ids:
        raw["tags"] = [None, sorted(tag_ids)]
    return Changes(raw=raw)


def bulk_create_customers(rows: list[Row], by) -> list[str | None]:
    """Create the rows' customers as `create_customer` would, in a few inserts; each row's
    error (None when created). A batch the database refuses (a unique custom value taken
    meanwhile) goes row by row instead."""
    objs = []
    for row in rows:
        customer = row.record
        customer.created_by = by
        objs.append(customer)
    try:
        with transaction.atomic():
            bulk.insert(Customer, objs)
            tag_names = {id(row.record): row.values.get("tags") or [] for row in rows}
            wanted = sorted({name for names in tag_names.values() for name in names})
            tags = {tag.name: tag for tag in customers.resolve_tags(wanted)} if wanted else {}
            through = Customer.tags.through
            links = []
            tag_ids: dict[int, list[int]] = {}
            for customer in objs:
                ids = [tags[name].pk for name in tag_names[id(customer)] if name in tags]
                tag_ids[customer.pk] = ids
                links += [through(customer_id=customer.pk, tag_id=tag_id) for tag_id in ids]
            bulk.insert(through, links)
            record_changes(
                objs,
                by=by,
                kind=EventKind.CREATED,
                changes=[_created_changes(c, tag_ids[c.pk]) for c in objs],
            )
        return [None] * len(rows)
    except IntegrityError:
        for customer in objs:
            customer.pk = None
            customer._state.adding = True
        return [write_row("customer", row, by) for row in rows]
