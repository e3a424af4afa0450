"""Cards that higher apps add to a crm record's page without crm importing them: a
customer's page shows pipelines' card of its deals. An app names its cards in its record
type's spec (crm.records.RecordTypeSpec.cards), or registers one with `register_card`
from its AppConfig.ready().

A card is a template and a `build(user, record)` that returns the template's context
(the template reads it as `card`), or None when the user is not one to show it to. It
should cost a query or two: the page is the customer's, not the card's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models


@dataclass(frozen=True)
class RecordCard:
    key: str  # stable, for tests and styling
    page: str  # the record type whose page shows it: "customer"
    template: str  # rendered with the page's context and `card`, what build() returned
    build: Callable[[Any, models.Model], dict[str, Any] | None]
    order: int = 100  # among the cards of the page, smaller first


@dataclass(frozen=True)
class ShownCard:
    key: str
    template: str
    context: dict[str, Any]


_cards: dict[tuple[str, str], RecordCard] = {}


def register_card(card: RecordCard) -> RecordCard:
    """Add (or replace, by page and key) a card."""
    _cards[(card.page, card.key)] = card
    return card


def cards_for(user, record: models.Model) -> list[ShownCard]:
    """The cards of `record`'s page this user gets, in order, each built once."""
    page = type(record).record_type
    shown = []
    for card in sorted(_cards.values(), key=lambda c: c.order):
        if card.page != page:
            continue
        context = card.build(user, record)
        if context is not None:
            shown.append(ShownCard(card.key, card.template, context))
    return shown
