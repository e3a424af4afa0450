"""Cards that higher apps add to the dashboard (/) without crm importing them: an app
registers a provider from its AppConfig.ready(), e.g. reports' team figures for managers.

A provider is `provider(user) -> list[Card]`; it returns [] when the user is not one to
show them to. It should cost a query or two."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Card:
    key: str  # stable, for tests and styling
    label: str
    value: str  # as shown
    url: str = ""  # the report or list behind the figure
    note: str = ""  # a second line, e.g. the amount of a count
    icon: str = "chart-bar"


Provider = Callable[[object], list[Card]]
_providers: list[Provider] = []


def register(provider: Provider) -> Provider:
    if provider not in _providers:
        _providers.append(provider)
    return provider


def cards_for(user) -> list[Card]:
    cards: list[Card] = []
    for provider in _providers:
        cards.extend(provider(user))
    return cards
