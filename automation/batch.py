"""What the events of one delivery share while the engine handles them.

A worker hands the engine a message's events together (one per committed transaction:
a 100-move import is one message). Reading the same things once per message instead
of once per event is most of what the engine costs per event:

- the active rules and the custom field definitions (a version read from the cache
  each, per message instead of per event and per placeholder);
- the records the events are about, loaded in one query per record type;
- the system user rules act as, and who is whose manager;
- the rows the message writes: the engine's own log rows (a run that did not match,
  each action's row, a run's end), the tasks its rules make and their events, written
  with one statement per table when the message is done (`flush`, through
  `crm.bulk.deferring`), not one per row. Code that reads those tables inside the
  message flushes first (tasks to complete on leaving a stage, the fewest open tasks).
  A run whose action fails fails the message, which the worker then hands over one
  event at a time (crm.events.deliver), outside any message.

Records are read at the start of the message, after the transaction that wrote its
events committed, so they are what a read per event would see, until an action of the
message changes one: `records_changed()` drops them all (an action may change records
other than its own: releasing a customer changes what its contacts' owner is).

Outside a message (a rule tried in the admin, a scheduled row, tests) nothing is
shared and each call reads afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from crm import bulk

# A record known to be gone is kept as GONE (None means "not loaded").
GONE = object()


@dataclass
class Shared:
    records: dict[tuple[str, int], Any] = field(default_factory=dict)
    # (record type, record id, stage) that may have tasks to complete on leaving the
    # stage; None: not known (ask the database).
    leaving: set[tuple[str, int, int]] | None = None
    memo: dict[Any, Any] = field(default_factory=dict)
    updates: list[tuple[Any, tuple[str, ...]]] = field(default_factory=list)


_shared: ContextVar[Shared | None] = ContextVar("automation_batch", default=None)


@contextmanager
def sharing() -> Iterator[Shared]:
    state = Shared()
    token = _shared.set(state)
    try:
        with bulk.deferring():
            yield state
    finally:
        _shared.reset(token)


def current() -> Shared | None:
    return _shared.get()


def record(record_type: str, record_id: int) -> Any:
    """The preloaded record, GONE, or None when it was not preloaded."""
    state = _shared.get()
    return state.records.get((record_type, record_id)) if state else None


def records_changed() -> None:
    """An action changed records: every later read goes to the database."""
    state = _shared.get()
    if state is not None:
        state.records.clear()


def forget(record_type: str, ids) -> None:
    state = _shared.get()
    if state is not None:
        for pk in ids:
            state.records.pop((record_type, pk), None)


def memo(key: Any, compute: Callable[[], Any]) -> Any:
    """`compute()` once per message for `key` (every call when there is no message)."""
    state = _shared.get()
    if state is None:
        return compute()
    if key not in state.memo:
        state.memo[key] = compute()
    return state.memo[key]


def defer(row) -> bool:
    """Insert `row` with the message's others; False outside a message (save it now)."""
    return _shared.get() is not None and bulk.defer(row)


def defer_update(row, fields: tuple[str, ...]) -> bool:
    """Write `fields` of the saved `row` with the message's others; False outside one."""
    state = _shared.get()
    if state is None:
        return False
    state.updates.append((row, fields))
    return True


def flush() -> None:
    """Write what was deferred (`crm.bulk.flush`: one insert per table), then one update
    per table and set of fields."""
    state = _shared.get()
    if state is None:
        return
    bulk.flush()
    updates, state.updates = state.updates, []
    grouped: dict[tuple[type, tuple[str, ...]], dict[int, Any]] = {}
    for row, fields in updates:
        grouped.setdefault((type(row), fields), {})[row.pk] = row  # the last one wins
    for (model, fields), batch in grouped.items():
        model.objects.bulk_update(list(batch.values()), list(fields))
