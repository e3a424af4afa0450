"""Deals and converted leads follow a customer merged into another: crm's merge cannot
name them (crm never imports pipelines), so they join it as merge participants, named
by the deal and lead specs (pipelines/record_types.py)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import User
from crm.models import Customer
from crm.services.customers import MergeParticipant
from crm.services.history import Changes, record_change, snapshot

from .models import Deal, Lead


def _repoint(records: models.QuerySet, field: str, survivor: Customer, by: User) -> int:
    """Point `field` of the records at the survivor, each with a history entry from the
    old customer's name to the survivor's (written even when the two names read the
    same, as duplicates' often do: the note says why it changed)."""
    rows = list(records.select_for_update(of=("self",)).select_related(field).order_by("pk"))
    if not rows:
        return 0
    type(rows[0]).objects.filter(pk__in=[r.pk for r in rows]).update(
        **{field: survivor, "updated_at": timezone.now()}
    )
    note = _("Its customer was merged into another.")
    for record in rows:
        before = snapshot(record, only=[field])
        setattr(record, field, survivor)
        after = snapshot(record, only=[field])
        changes = Changes.one(
            field,
            before.raw[field],
            after.raw[field],
            old_text=before.display[field],
            new_text=after.display[field],
        )
        record_change(record, by=by, changes=changes, note=note)
    return len(rows)


def move_deals(survivor: Customer, others: list[Customer], by: User) -> int:
    return _repoint(Deal.objects.filter(customer__in=others), "customer", survivor, by)


def move_converted_leads(survivor: Customer, others: list[Customer], by: User) -> int:
    return _repoint(
        Lead.objects.filter(converted_customer__in=others), "converted_customer", survivor, by
    )


# Named by the deal and lead specs (pipelines/record_types.py).
DEALS = MergeParticipant(
    key="deals",
    move=move_deals,
    count=lambda customer: Deal.objects.filter(customer=customer).count(),
    describe=lambda n: ngettext("%(n)s deal moves", "%(n)s deals move", n) % {"n": n},
    icon="briefcase",
)
# A converted lead stays where it is; only its link to the customer is repointed.
CONVERTED_LEADS = MergeParticipant(
    key="converted_leads",
    move=move_converted_leads,
    count=lambda customer: Lead.objects.filter(converted_customer=customer).count(),
)
