"""The card of a record's automation runs on its page (crm.record_cards): the customer's,
the lead's and the deal's page list the latest runs of rules on the record, each with
its trigger, status and what its actions did. The page already decides who sees the
record; the card shows what ran on it, in two queries (the runs, their actions)."""

from __future__ import annotations

from typing import Any

from crm.record_cards import RecordCard, register_card

from .models import RuleRun, RunStatus

RUNS_LIMIT = 10
PAGES = ("customer", "lead", "deal")

# Tabler colour of each run status's badge.
STATUS_COLOURS = {
    RunStatus.PENDING: "blue",
    RunStatus.WAITING: "yellow",
    RunStatus.DONE: "green",
    RunStatus.NOT_MATCHED: "secondary",
    RunStatus.CANCELLED: "secondary",
    RunStatus.FAILED: "red",
    RunStatus.STOPPED: "orange",
}


def record_runs(user, record) -> dict[str, Any] | None:
    """The record's latest runs, newest first; None (no card) when no rule ran on it."""
    runs = list(
        RuleRun.objects.filter(record_type=type(record).record_type, record_id=record.pk)
        .select_related("rule")
        .prefetch_related("action_runs")
        .order_by("-created_at", "-id")[:RUNS_LIMIT]
    )
    if not runs:
        return None
    for run in runs:
        run.colour = STATUS_COLOURS.get(run.status, "secondary")
    return {"runs": runs, "limit": RUNS_LIMIT}


CARDS = [
    RecordCard(
        key="automation_runs",
        page=page,
        template="automation/partials/runs_card.html",
        build=record_runs,
        order=90,
    )
    for page in PAGES
]


def register_cards() -> None:
    for card in CARDS:
        register_card(card)
