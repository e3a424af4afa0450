"""The standard columns of the lead and deal list exports (CSV and Excel), written by
crm.exports like the customers' and named by the lead and deal specs
(pipelines/record_types.py). Field permissions are applied there: a column named after a
field the role hides is left out (a deal's weighted amount with its amount), and the
custom fields the user may see follow these columns."""

from __future__ import annotations

from django.utils.translation import gettext as _

from crm.exports import (
    Column,
    Lookups,
    amount_column,
    choice_column,
    column_label,
    date_column,
    department_column,
    item_column,
    moment_column,
    number_column,
    owner_column,
    phone_column,
    related_column,
    text_column,
)

from .models import Deal, Lead


def _display_name(record) -> str:
    return record.display_name


def _staged_columns(model, lookups: Lookups) -> list[Column]:
    """Where a lead or a deal stands: its pipeline and stage (in the user's language),
    status, the lost reason and note, and its dates."""
    return [
        related_column(model, "pipeline", text=_display_name),
        related_column(model, "stage", text=_display_name),
        choice_column(model, "status"),
        item_column(model, "lost_reason", lookups),
        text_column(model, "lost_note", width=30),
        moment_column(model, "stage_entered_at"),
        moment_column(model, "created_at"),
        moment_column(model, "closed_at"),
    ]


def lead_columns(lookups: Lookups) -> list[Column]:
    return [
        text_column(Lead, "company_name", width=30),
        text_column(Lead, "person_name", width=16),
        text_column(Lead, "title"),
        phone_column(Lead, "phone"),
        text_column(Lead, "email", width=24),
        text_column(Lead, "wechat", text=True, width=18),
        item_column(Lead, "source", lookups),
        # An unassigned lead is the list's "Unassigned", not the customers' public pool.
        owner_column(Lead, empty=_("Unassigned")),
        department_column(lookups),
        *_staged_columns(Lead, lookups),
        text_column(Lead, "notes", width=30),
    ]


def deal_columns(lookups: Lookups) -> list[Column]:
    return [
        text_column(Deal, "title", width=30),
        related_column(Deal, "customer", width=30),
        related_column(Deal, "contact", width=16),
        amount_column("amount", column_label(Deal, "amount"), lambda row: row.amount),
        number_column(Deal, "probability"),
        # The amount times the probability: it gives the amount away, so a role that
        # hides the amount does not get it either.
        amount_column(
            "weighted_amount",
            _("Weighted"),
            lambda row: row.weighted_amount,
            reveals=("amount",),
        ),
        date_column(Deal, "expected_close_date"),
        owner_column(Deal),
        department_column(lookups),
        *_staged_columns(Deal, lookups),
    ]
