"""Contacts: create and edit, one primary contact per customer."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts import access
from accounts.models import User

from ..fields import values as field_values
from ..models import Contact, EventKind
from .history import diff, record_change, snapshot


def _one_primary(contact: Contact) -> None:
    if contact.is_primary:
        Contact.objects.filter(customer_id=contact.customer_id, is_primary=True).exclude(
            pk=contact.pk
        ).update(is_primary=False)


@transaction.atomic
def create_contact(*, contact: Contact, by: User) -> Contact:
    """Add a contact to a customer the user may change."""
    if not access.has_permission(by, "contact", "add") or not access.can(
        by, contact.customer, "change"
    ):
        raise PermissionDenied
    contact.created_by = by
    field_values.enforce_field_access(contact, stored=None, by=by, record_type="contact")
    field_values.check_custom(contact, record_type="contact", before={})
    contact.full_clean(validate_constraints=False)
    _one_primary(contact)
    field_values.save_checking_unique(contact, record_type="contact")
    record_change(contact, by=by, kind=EventKind.CREATED)
    return contact


@transaction.atomic
def update_contact(*, contact: Contact, by: User) -> Contact:
    stored = Contact.objects.select_related("customer").get(pk=contact.pk)
    if not access.can(by, stored, "change"):
        raise PermissionDenied
    if contact.customer_id != stored.customer_id and not access.can(by, contact.customer, "change"):
        raise PermissionDenied
    before = snapshot(stored)
    field_values.enforce_field_access(contact, stored=stored, by=by, record_type="contact")
    field_values.check_custom(contact, record_type="contact", before=stored.custom or {})
    contact.full_clean(validate_constraints=False)
    _one_primary(contact)
    field_values.save_checking_unique(contact, record_type="contact")
    record_change(contact, by=by, changes=diff(before, snapshot(contact, like=stored)))
    return contact
