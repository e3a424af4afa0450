"""Inserting many rows at once: `insert(model, objs)`.

On PostgreSQL the rows go in with COPY, their ids taken from the table's sequence first,
so the objects have their primary keys afterwards as with `bulk_create`; elsewhere it is
`bulk_create`. COPY skips Django's per-value SQL building, which costs more than the
database's own work for a few thousand rows (an import's batch of new customers and
their events: 3x faster measured, bench/imports.py).

Only for plain rows: no signals are sent (as with bulk_create), and every concrete
field's Python value must be what it stores (services have already cleaned them).

`deferring()` opens a unit of work whose new rows wait to be inserted together, one
statement per table, at its end (`flush`): a worker's message of events, whose rules
make a task and a notice per event. Inside it a service calls `defer(row)` instead of
`row.save()`; `defer(row, pk=True)` gives the row its id from the table's sequence at
once (PostgreSQL), for the rows written next that refer to it. Whoever reads such a
table inside the unit of work flushes first. Outside one, `defer` returns False and the
caller saves as usual.
"""

from __future__ import annotations

import io
import json
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
NULL = "\\N"


def _text(value: Any) -> str:
    return str(value).translate(_ESCAPES)


def _boolean(value: bool) -> str:
    return "t" if value else "f"


def _moment(value: datetime | date | time) -> str:
    return value.isoformat()


def _writer(field: models.Field) -> Callable[[Any], str]:
    """How one column's non-null values are written in COPY's text format."""
    if isinstance(field, models.JSONField):
        encoder = field.encoder or DjangoJSONEncoder

        def dump(value) -> str:
            if not value and isinstance(value, (dict, list)):
                return "{}" if isinstance(value, dict) else "[]"
            return json.dumps(value, cls=encoder, ensure_ascii=False).translate(_ESCAPES)

        return dump
    if isinstance(field, models.BooleanField):
        return _boolean
    if isinstance(field, (models.DateTimeField, models.DateField, models.TimeField)):
        return _moment
    if isinstance(field, (models.IntegerField, models.AutoField, models.ForeignKey)):
        return str
    if isinstance(field, (models.DecimalField, models.FloatField)):
        return str
    return _text


def insert(model: type[models.Model], objs: Sequence[models.Model]) -> Sequence[models.Model]:
    """Insert `objs` (new, unsaved) and set their primary keys."""
    if not objs:
        return objs
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return model.objects.using(alias).bulk_create(objs)
    opts = model._meta
    pk = opts.pk
    fields = [f for f in opts.concrete_fields if f is not pk]
    auto = [f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)]
    keys = [f for f in fields if f.many_to_one]
    writers = [_writer(f) for f in fields]
    values_of = operator.attrgetter(*[f.attname for f in fields])
    with connection.cursor() as cursor:
        missing = [obj for obj in objs if obj.pk is None]
        if missing:  # rows given their id earlier (`defer(pk=True)`) keep it
            for obj, new_id in zip(missing, _next_ids(cursor, model, len(missing)), strict=True):
                setattr(obj, pk.attname, new_id)
        buffer = io.StringIO()
        lines = []
        for obj in objs:
            new_id = obj.pk
            _bind_keys(obj, keys)
            for field in auto:
                field.pre_save(obj, True)
            row = values_of(obj) if len(fields) > 1 else (values_of(obj),)
            cells = [NULL if v is None else w(v) for v, w in zip(row, writers, strict=True)]
            lines.append(f"{new_id}\t" + "\t".join(cells))
        buffer.write("\n".join(lines))
        buffer.write("\n")
        buffer.seek(0)
        columns = ", ".join(
            connection.ops.quote_name(c) for c in [pk.column] + [f.column for f in fields]
        )
        with connection.wrap_database_errors:  # an IntegrityError as Django's own
            cursor.copy_expert(
                f"COPY {connection.ops.quote_name(opts.db_table)} ({columns}) FROM STDIN", buffer
            )
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias
    return objs


def _next_ids(cursor, model: type[models.Model], count: int) -> list[int]:
    return _next_ids_of(cursor, {model: count})[model]


def _next_ids_of(cursor, counts: dict[type[models.Model], int]) -> dict[type, list[int]]:
    """`count` new ids of each model's table, from its sequence, in one query."""
    models_ = list(counts)
    parts, params = [], []
    for index, model in enumerate(models_):
        parts.append(
            "SELECT %s, nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)"
        )
        params += [index, model._meta.db_table, model._meta.pk.column, counts[model]]
    cursor.execute(" UNION ALL ".join(parts), params)
    found: dict[type, list[int]] = {model: [] for model in models_}
    for index, new_id in cursor.fetchall():
        found[models_[index]].append(new_id)
    return found


def _bind_keys(obj: models.Model, keys: list[models.Field]) -> None:
    """A foreign key given as a row inserted since (a run's action rows, made before the
    run had its id) takes that row's id, as `save` and `bulk_create` do."""
    for field in keys:
        if getattr(obj, field.attname) is None and field.is_cached(obj):
            related = field.get_cached_value(obj)
            if related is not None and related.pk is not None:
                setattr(obj, field.attname, related.pk)


# --- Rows inserted together at the end of a unit of work ------------------------------


class _Deferred:
    def __init__(self) -> None:
        # Each row with a no-op on_commit callback of the savepoint it was deferred in:
        # Django drops the callback if that savepoint rolls back, and the row with it.
        self.rows: list[tuple[models.Model, Callable[[], None]]] = []
        # One marker per (database, savepoints open): a savepoint's name is never used
        # again, so the same key means the same savepoint, still open.
        self.markers: dict[tuple[str, tuple[str, ...]], Callable[[], None]] = {}
        self.ids: dict[type[models.Model], list[int]] = {}
        self.reserved: dict[type[models.Model], int] = {}


_deferred: ContextVar[_Deferred | None] = ContextVar("crm_bulk_deferred", default=None)


@contextmanager
def deferring() -> Iterator[None]:
    """A unit of work whose deferred rows are inserted by `flush` (called by its owner
    before the end: rows still waiting when it closes are a bug, and are dropped with
    an error rather than written outside the owner's transaction)."""
    state = _Deferred()
    token = _deferred.set(state)
    try:
        yield
    finally:
        _deferred.reset(token)
    if state.rows:
        raise RuntimeError(f"{len(state.rows)} deferred rows were never flushed")


def is_deferring() -> bool:
    return _deferred.get() is not None


def defer(row: models.Model, *, pk: bool = False) -> bool:
    """Insert the new `row` with the unit of work's others; False outside one (save it
    now). `pk=True`: the row needs its id now (the rows written next refer to it), taken
    from the table's sequence; only on PostgreSQL (elsewhere: False, save it now). Its
    auto-set dates are set now, so the row is as `save` would leave it."""
    state = _deferred.get()
    alias = router.db_for_write(type(row))
    connection = connections[alias]
    if state is None or not connection.in_atomic_block:
        return False
    if pk:
        if connection.vendor != "postgresql":
            return False
        row.pk = _reserve_id(state, type(row), alias)
    for field in row._meta.concrete_fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            field.pre_save(row, True)
    key = (alias, tuple(connection.savepoint_ids))
    marker = state.markers.get(key)
    if marker is None:
        marker = state.markers[key] = _Marker()
        transaction.on_commit(marker, using=alias)
    state.rows.append((row, marker))
    return True


class _Marker:
    def __call__(self) -> None:
        pass


def _reserve_id(state: _Deferred, model: type[models.Model], alias: str) -> int:
    """Ids are taken from the sequence in growing blocks (16, 16, 32, 64, …: at most as
    many as already used are left unused, gaps a sequence has anyway)."""
    pool = state.ids.setdefault(model, [])
    if not pool:
        count = max(16, state.reserved.get(model, 0))
        with connections[alias].cursor() as cursor:
            pool.extend(reversed(_next_ids(cursor, model, count)))
        state.reserved[model] = state.reserved.get(model, 0) + count
    return pool.pop()


def flush() -> None:
    """Insert the deferred rows: one statement per table, tables in the order a row of
    each was first deferred (rows that refer to a row without an id yet are deferred
    after it, and take its id once it is inserted)."""
    state = _deferred.get()
    if state is None or not state.rows:
        return
    rows, state.rows = state.rows, []
    by_model: dict[type[models.Model], list[models.Model]] = {}
    waiting: dict[str, set[int]] = {}
    for row, marker in rows:
        alias = router.db_for_write(type(row))
        if alias not in waiting:
            waiting[alias] = {id(func) for _s, func, _r in connections[alias].run_on_commit}
        if id(marker) in waiting[alias]:  # not rolled back with a savepoint
            by_model.setdefault(type(row), []).append(row)
    _give_ids(by_model)
    for model, batch in by_model.items():
        connection = connections[router.db_for_write(model)]
        if connection.vendor == "postgresql":
            insert(model, batch)
        elif connection.features.can_return_rows_from_bulk_insert:
            model.objects.bulk_create(batch)
        else:  # the ids are needed by the rows of the next tables
            for row in batch:
                row.save(force_insert=True)


def _give_ids(by_model: dict[type[models.Model], list[models.Model]]) -> None:
    """On PostgreSQL, the ids every table's rows still need, in one query (not one per
    table)."""
    by_alias: dict[str, dict[type[models.Model], list[models.Model]]] = {}
    for model, rows in by_model.items():
        alias = router.db_for_write(model)
        missing = [row for row in rows if row.pk is None]
        if missing and connections[alias].vendor == "postgresql":
            by_alias.setdefault(alias, {})[model] = missing
    for alias, wanting in by_alias.items():
        with connections[alias].cursor() as cursor:
            ids = _next_ids_of(cursor, {model: len(rows) for model, rows in wanting.items()})
        for model, rows in wanting.items():
            for row, new_id in zip(rows, ids[model], strict=True):
                row.pk = new_id
