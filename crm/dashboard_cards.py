"""What the start page (/) shows, by whom it is for: registries higher apps fill from
their AppConfig.ready() without crm importing them.

The page is about the signed-in person's work, and that depends on what they do here
(`home_role`): a sales rep works their own records (today, overdue, deals closing soon,
recent leads), a manager watches a team (its figures and people), customer service looks
customers up and logs what they said (search, recent service activity), an admin sees
the whole company and the configuration. So every figure and panel declares the roles it
suits and, optionally, the permission it needs ("deal.view"); the page shows each
only to those, once.

Two kinds of things are registered:

- **figures** (`Card`s, a number with a label), from a *provider*: `provider(user) ->
  list[Card]`, registered with `register(provider, roles=..., permission=...)`. It
  should cost a query or two and may still return [] (e.g. when amounts are hidden).
- **panels** (a card with a list: today's tasks, the team), a `Panel` registered with
  `register_panel(Panel(...))`: `context(request)` returns the panel template's context,
  or None to leave the panel out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from accounts import access
from accounts.models import DataScope

# What a person does here (see `home_role`).
REP = "rep"
MANAGER = "manager"
SERVICE = "service"
ADMIN = "admin"
ROLES = (REP, MANAGER, SERVICE, ADMIN)


def home_role(user) -> str:
    """Which home suits the user: an admin (superuser) configures and oversees the whole
    company; someone who sees only their own records is a rep; someone who sees others'
    and may change customers is a manager; someone who sees others' but may not change
    customers is customer service (they look things up and log what was said)."""
    if user.is_superuser:
        return ADMIN
    if access.data_scope(user) == DataScope.OWN:
        return REP
    if access.has_permission(user, "customer", "change"):
        return MANAGER
    return SERVICE


def _permitted(user, permission: str) -> bool:
    if not permission:
        return True
    record_type, action = permission.split(".", 1)
    return access.has_permission(user, record_type, action)


@dataclass(frozen=True)
class Card:
    key: str  # stable, for tests and styling
    label: str
    value: str  # as shown (money compact: crm.money.format_money_compact)
    url: str = ""  # the report or list behind the figure
    note: str = ""  # a second line, e.g. the amount of a count
    icon: str = "chart-bar"
    # The exact value of a compact figure or note (¥936,000.00 for ¥93.6万): its title.
    value_title: str = ""
    note_title: str = ""


Provider = Callable[[object], list[Card]]


@dataclass(frozen=True)
class _Registration:
    provider: Provider
    roles: tuple[str, ...]
    permission: str


_providers: list[_Registration] = []


def register(
    provider: Provider | None = None, *, roles: Iterable[str] = ROLES, permission: str = ""
):
    """Register a figures provider for `roles` (default: everyone) when the user has
    `permission`; as `@register` or `@register(roles=(MANAGER, ADMIN))`."""

    def add(function: Provider) -> Provider:
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown home roles: {sorted(unknown)}")
        if all(r.provider is not function for r in _providers):
            _providers.append(_Registration(function, tuple(roles), permission))
        return function

    return add(provider) if provider is not None else add


def cards_for(user, role: str | None = None) -> list[Card]:
    role = role or home_role(user)
    cards: list[Card] = []
    for registration in _providers:
        if role in registration.roles and _permitted(user, registration.permission):
            cards.extend(registration.provider(user))
    return cards


@dataclass(frozen=True)
class Panel:
    key: str  # stable: the panel's data-testid is "panel-<key>"
    template: str
    # context(request) -> the template's context, or None: nothing to show this time.
    context: Callable[[object], dict | None]
    roles: tuple[str, ...] = ROLES
    permission: str = ""
    # Lower first. Work due comes first (10s), then records (20s–30s), then the rest.
    order: int = 100
    # A wide panel takes the full row on large screens (a table), others a column.
    wide: bool = False


_panels: dict[str, Panel] = {}


def register_panel(panel: Panel) -> Panel:
    unknown = set(panel.roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown home roles: {sorted(unknown)}")
    _panels[panel.key] = panel
    return panel


def panels() -> list[Panel]:
    return sorted(_panels.values(), key=lambda p: (p.order, p.key))


@dataclass(frozen=True)
class ShownPanel:
    panel: Panel
    context: dict

    @property
    def key(self) -> str:
        return self.panel.key


def panels_for(request, role: str | None = None) -> list[ShownPanel]:
    """The panels of the user's home, in order, each with its context."""
    user = request.user
    role = role or home_role(user)
    shown = []
    for panel in panels():
        if role not in panel.roles or not _permitted(user, panel.permission):
            continue
        context = panel.context(request)
        if context is not None:
            shown.append(ShownPanel(panel, context))
    return shown
