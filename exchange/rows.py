"""Model rows read and written with SQL built once per shape, for the sale's hot path.

A purchase reads three rows and inserts five; its API call reads the bearer token and
claims and stores the idempotency key besides. Through the ORM, building each statement
(the query compiler, lookups, joins) cost the client several times the CPU the database
spent running it, and on a two-core machine that CPU sets how many sales a second the
platform can take (benchmarks/money/run.py). These helpers keep what the ORM does per
row — each field's own ``pre_save`` and ``get_db_prep_*`` on the way in, its database
converters and ``Model.from_db`` on the way out — and build the SQL text once per model
and shape from the model's own metadata, so a model change cannot leave them behind.

They fire no model signals (the project uses none) and run in the caller's transaction.
Everything else uses the ORM.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.db.models.options import Options

M = TypeVar("M", bound=Model)

_Converter = tuple[Callable[[Any, Any, Any], Any], Any]  # (function, expression)


@dataclass(frozen=True)
class _SelectPlan:
    sql: str
    own: list[Field[Any, Any]]
    joined: list[Field[Any, Any]]
    keys: list[Field[Any, Any]]
    converters: list[list[_Converter]]


_inserts: dict[tuple[type[Model], str], tuple[str, list[Field[Any, Any]], str | None]] = {}
_updates: dict[tuple[Any, ...], tuple[str, list[Field[Any, Any]]]] = {}
_selects: dict[tuple[Any, ...], _SelectPlan] = {}


def _db() -> BaseDatabaseWrapper:
    # The wrapper itself, not the ``connection`` proxy: every attribute read through the
    # proxy costs a thread-local lookup, and field methods read it many times per row.
    return connections[DEFAULT_DB_ALIAS]


def kept_cursor(db: BaseDatabaseWrapper | None = None) -> Any:
    """A cursor kept open on the connection for these statements, made once per connection.

    Opening one per statement, as ``with connection.cursor()`` does, cost a sale about as
    much CPU as three of its statements. The kept cursor is Django's own wrapper (the
    broken-transaction check, query logging while tests or debug capture queries) and is
    replaced when the connection is, or when query logging is switched on or off.
    """
    db = db or _db()
    kept = getattr(db, "_kept_cursor", None)
    if kept is not None and kept[0] is db.connection and kept[1] == db.queries_logged:
        return kept[2]
    db.ensure_connection()
    cursor = _server_binding_cursor(db) if db.vendor == "postgresql" else db.cursor()
    db._kept_cursor = (db.connection, db.queries_logged, cursor)  # type: ignore[attr-defined]
    return cursor


def _server_binding_cursor(db: BaseDatabaseWrapper) -> Any:
    """On PostgreSQL, a cursor that sends parameters apart from the SQL text.

    Django's default psycopg cursor inlines every parameter into the text, so the server
    parses and plans each statement anew. These statements have fixed text, so with the
    parameters bound on the server psycopg prepares each one on its nth use
    (``PEERMARK_DB_PREPARE_THRESHOLD``) and later runs only bind and execute: in
    benchmarks/money/run.py that halved the server's CPU per sale. Only this cursor
    binds on the server; the rest of the ORM keeps Django's default, whose queries are
    not all valid with server-side parameters.
    """
    raw = db.connection
    factory = raw.cursor_factory
    raw.cursor_factory = _fixed_text_cursor()
    try:
        return db.cursor()  # Django's own wrapping: time zone, debug logging, errors
    finally:
        raw.cursor_factory = factory


@functools.cache
def _fixed_text_cursor() -> type:
    """Django's server-binding cursor, remembering how each statement text converts.

    psycopg caches the conversion of a statement's ``%s`` placeholders to ``$n`` only
    for statements of at most 50 parameters, guarding against ORM statements whose text
    varies with the data. The sale's one statement has more than 50, and converting it
    anew cost the client about a tenth of its CPU per sale. The texts sent through this
    cursor come from a handful of fixed shapes (one per model and shape), so every one
    is cached, in a bounded cache of its own.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor
    from psycopg import _queries

    cached = functools.lru_cache(maxsize=256)(_queries._query2pg_nocache)

    class FixedTextQuery(_queries.PostgresQuery):
        converted = cached

        def convert(self, query: Any, vars: Any) -> None:
            if vars is None or not isinstance(query, str | bytes):
                super().convert(query, vars)
                return
            self.query, self._want_formats, self._order, self._parts = cached(
                self._ensure_bytes(query), self._tx.encoding)
            self.dump(vars)

    class FixedTextCursor(ServerBindingCursor):
        _query_cls = FixedTextQuery

    return FixedTextCursor


def _field(meta: Options[Any], name: str) -> Field[Any, Any]:
    field = meta.get_field(name)
    if not isinstance(field, Field) or not field.concrete:
        raise ValueError(f"{meta.label}.{name} is not a column")
    return field


def _column(field: Field[Any, Any], db: BaseDatabaseWrapper) -> str:
    return db.ops.quote_name(str(field.column))


def insert(obj: M) -> M:
    """INSERT ``obj`` as a new row, as ``obj.save(force_insert=True)`` would.

    Inside ``one_statement`` on PostgreSQL the row is written when the block ends, and an
    auto key is filled in then; ``pk_of(obj)`` stands for it until then.
    """
    db = _db()
    model = type(obj)
    meta = model._meta
    plan = _inserts.get((model, db.vendor))
    if plan is None:
        auto = meta.auto_field
        fields = [f for f in meta.concrete_fields if f is not auto and not f.generated]
        returning = None
        if auto is not None and db.features.can_return_columns_from_insert:
            assert isinstance(auto, Field)
            returning = _column(auto, db)
        # Names from the model's metadata, quoted; every value is a parameter.
        sql = (f"INSERT INTO {db.ops.quote_name(meta.db_table)} "  # noqa: S608
               f"({', '.join(_column(f, db) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        plan = _inserts[(model, db.vendor)] = (sql, fields, returning)
    sql, fields, returning = plan
    # As Model.save does: a related object not yet written (its key still None, as an
    # auto key queued in one_statement is) is refused, never stored as NULL.
    obj._prepare_related_fields_for_save(operation_name="insert")  # type: ignore[attr-defined]
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in fields]
    queue = _queue(db)
    if queue is not None:
        queue.append(_Write(sql, values, returning=returning,
                            obj=obj if returning else None))
    else:
        cursor = kept_cursor(db)
        with transaction.mark_for_rollback_on_error(db.alias):  # as Model.save does
            if returning:
                cursor.execute(f"{sql} RETURNING {returning}", values)
                obj.pk = cursor.fetchone()[0]
            else:
                cursor.execute(sql, values)
                if meta.auto_field is not None:
                    obj.pk = cursor.lastrowid
    obj._state.adding = False
    obj._state.db = db.alias
    return obj


def execute(sql: str, params: Sequence[Any], *, expect: int | None = None,
            on_mismatch: Callable[[], None] | None = None) -> None:
    """Run one INSERT or UPDATE of the hot path, or queue it inside ``one_statement``.

    ``expect`` is the number of rows the statement must touch; if it touches another
    number, ``on_mismatch`` is called (once the statement has run) and should raise.
    ``params`` may hold ``pk_of(obj)`` for a row inserted earlier in the same block.
    """
    db = _db()
    queue = _queue(db)
    if queue is not None:
        queue.append(_Write(sql, list(params), expect=expect, on_mismatch=on_mismatch))
        return
    cursor = kept_cursor(db)
    with transaction.mark_for_rollback_on_error(db.alias):
        cursor.execute(sql, [_resolved(value) for value in params])
    if expect is not None and cursor.rowcount != expect:
        _mismatch(sql, on_mismatch)


class PkOf:
    """The auto key of ``obj``, inserted earlier in the same ``one_statement`` block."""

    def __init__(self, obj: Model) -> None:
        self.obj = obj


def pk_of(obj: Model) -> Any:
    """``obj``'s key, or a stand-in for it while its insert waits in ``one_statement``."""
    return obj.pk if obj.pk is not None else PkOf(obj)


def _resolved(value: Any) -> Any:
    return value.obj.pk if isinstance(value, PkOf) else value


@dataclass
class _Write:
    sql: str
    params: list[Any]
    returning: str | None = None  # the auto key's column, for an insert that has one
    obj: Model | None = None  # whose key to fill in
    expect: int | None = None
    on_mismatch: Callable[[], None] | None = None


def _queue(db: BaseDatabaseWrapper) -> list[_Write] | None:
    queue: list[_Write] | None = getattr(db, "_rows_queue", None)
    if queue is not None and _savepoints(db) != db._rows_queue_depth:  # type: ignore[attr-defined]
        # A savepoint opened inside the block could be rolled back (or fail) without the
        # queued writes, which go with the block's statement: refuse rather than mislead.
        raise RuntimeError("a hot-path write inside a savepoint opened within one_statement")
    return queue


def _savepoints(db: BaseDatabaseWrapper) -> int:
    # atomic(savepoint=False) records None: it can only roll back the whole transaction.
    return sum(1 for sid in db.savepoint_ids if sid is not None)


@contextmanager
def one_statement() -> Iterator[None]:
    """Send the block's ``insert`` and ``execute`` writes as one statement (PostgreSQL).

    A sale writes eight rows. Sent one by one, each costs a round trip, and on a
    two-core machine shared with the database the two processes' per-message work
    (waking, reading the socket, replying) cost more CPU than the writes themselves.
    On PostgreSQL the queued writes become one statement of data-modifying ``WITH``
    parts, prepared once per connection like the others; an auto key a later write
    needs comes from the part that inserted it. Elsewhere each write runs as it is
    made, as outside the block. A nested block joins the outer one (the purchase API
    sends its stored response with the sale's writes); a write inside a savepoint
    opened within the block is refused, since that savepoint could not take it back.

    Must run inside a transaction: a write whose row count is wrong raises only after
    the whole statement ran, and the transaction must then roll back. Reads inside the
    block do not see its writes. If the block raises, its writes are never sent.
    """
    db = _db()
    if db.vendor != "postgresql" or _queue(db) is not None:
        yield
        return
    if not db.in_atomic_block:
        raise RuntimeError("one_statement must run inside transaction.atomic()")
    queue: list[_Write] = []
    db._rows_queue_depth = _savepoints(db)  # type: ignore[attr-defined]
    db._rows_queue = queue  # type: ignore[attr-defined]
    try:
        yield
    finally:
        db._rows_queue = None  # type: ignore[attr-defined]
    if queue:
        _write_as_one(db, queue)


def _write_as_one(db: BaseDatabaseWrapper, queue: list[_Write]) -> None:
    # Every part is the hot path's own SQL (names from model metadata, values passed as
    # parameters); the parts are named w0, w1, … in the order they were made.
    parts: list[str] = []
    params: list[Any] = []
    results: list[str] = []
    for index, write in enumerate(queue):
        pieces = write.sql.split("%s")
        if len(pieces) != len(write.params) + 1:
            raise ValueError(f"{len(write.params)} parameters for {len(pieces) - 1} placeholders")
        text = pieces[0]
        for value, piece in zip(write.params, pieces[1:], strict=True):
            if isinstance(value, PkOf):
                source = next(i for i, w in enumerate(queue[:index]) if w.obj is value.obj)
                text += _scalar(str(queue[source].returning), source) + piece
            else:
                text += "%s" + piece
                params.append(value)
        parts.append(f"w{index} AS ({text} RETURNING {write.returning or 1})")
        results.append(_scalar(write.returning or "count(*)", index))
    sql = "WITH " + ", ".join(parts) + " SELECT " + ", ".join(results)
    cursor = kept_cursor(db)
    with transaction.mark_for_rollback_on_error(db.alias):
        cursor.execute(sql, params)
        row = cursor.fetchone()
    for write, value in zip(queue, row, strict=True):
        if write.obj is not None:
            write.obj.pk = value
        elif write.expect is not None and value != write.expect:
            _mismatch(write.sql, write.on_mismatch)


def _scalar(expression: str, part: int) -> str:
    """What part ``w{part}`` returned: its auto key, or how many rows it touched."""
    return f"(SELECT {expression} FROM w{part})"  # noqa: S608 (a column name or count(*))


def _mismatch(sql: str, on_mismatch: Callable[[], None] | None) -> None:
    # Other writes (the whole statement, in one_statement) may have landed: whatever the
    # handler does, this transaction must not commit. (Outside a transaction the one
    # statement has committed on its own and touched nothing else.)
    try:
        if on_mismatch is not None:
            on_mismatch()
    finally:
        if _db().in_atomic_block:
            transaction.set_rollback(True)
    raise DatabaseError(f"unexpected row count from: {sql[:80]}")


def update(obj: Model, fields: Sequence[str]) -> None:
    """UPDATE ``fields`` of ``obj``'s row, as ``obj.save(update_fields=fields)`` would.

    Inside ``one_statement`` on PostgreSQL the row is written when the block ends.
    """
    db = _db()
    meta = type(obj)._meta
    key = (type(obj), db.vendor, tuple(fields))
    plan = _updates.get(key)
    if plan is None:
        chosen = [_field(meta, name) for name in fields]
        # Names from the model's metadata, quoted; every value is a parameter.
        assignments = ", ".join(f"{_column(f, db)} = %s" for f in chosen)
        sql = (f"UPDATE {db.ops.quote_name(meta.db_table)} SET {assignments} "  # noqa: S608
               f"WHERE {_column(meta.pk, db)} = %s")
        plan = _updates[key] = (sql, chosen)
    sql, chosen = plan
    values = [f.get_db_prep_save(f.pre_save(obj, add=False), db) for f in chosen]
    values.append(meta.pk.get_db_prep_value(obj.pk, db))

    def no_such_row() -> None:
        raise DatabaseError(f"{meta.label} {obj.pk} was not updated: no such row")

    execute(sql, values, expect=1, on_mismatch=no_such_row)


def select(model: type[M], *, fields: Sequence[str], where: Mapping[str, Any],
           related: tuple[str, Sequence[str]] | None = None) -> list[M]:
    """The rows of ``model`` whose fields equal ``where`` (a tuple means IN, None IS NULL).

    Only ``fields`` are loaded (the rest deferred, as with ``only()``). ``related`` names
    one forward foreign key and the fields to load of the row it points to, in the same
    query (as with ``select_related``).
    """
    db = _db()
    if any(value == () for value in where.values()):
        return []  # IN of nothing matches nothing (and is not SQL on PostgreSQL)
    meta = model._meta
    shape = (model, db.vendor, tuple(fields), related and (related[0], tuple(related[1])),
             tuple((name, _test(v)) for name, v in where.items()))
    plan = _selects.get(shape)
    if plan is None:
        plan = _selects[shape] = _select_plan(model, fields, where, related, db)
    params: list[Any] = []
    for field, value in zip(plan.keys, where.values(), strict=True):
        if value is None:
            continue
        for one in value if isinstance(value, tuple) else (value,):
            params.append(field.get_db_prep_value(field.to_python(one), db))
    cursor = kept_cursor(db)
    with transaction.mark_for_rollback_on_error(db.alias):
        cursor.execute(plan.sql, params)
        fetched = cursor.fetchall()
    own, joined = plan.own, plan.joined
    found: list[M] = []
    for raw in fetched:
        row = [value if value is None else _convert(value, fns, db)
               for value, fns in zip(raw, plan.converters, strict=True)]
        obj = model.from_db(db.alias, [f.attname for f in own], row[:len(own)])
        if related is not None:
            fk = _field(meta, related[0])
            rest = row[len(own):]
            other = None if all(v is None for v in rest) else joined[0].model.from_db(
                db.alias, [f.attname for f in joined], rest)
            fk.set_cached_value(obj, other)  # type: ignore[attr-defined]
        found.append(obj)
    return found


def _test(value: Any) -> tuple[str, int]:
    """How a ``where`` value compares, for the plan's cache key."""
    if value is None:
        return ("null", 0)
    if isinstance(value, tuple):
        return ("in", len(value))
    return ("eq", 1)


def _convert(value: Any, fns: list[_Converter], db: BaseDatabaseWrapper) -> Any:
    for fn, expression in fns:
        value = fn(value, expression, db)
    return value


def _select_plan(model: type[Model], fields: Sequence[str], where: Mapping[str, Any],
                 related: tuple[str, Sequence[str]] | None,
                 db: BaseDatabaseWrapper) -> _SelectPlan:
    meta = model._meta
    # In the model's own field order, as Model.from_db expects of a partial row.
    own = _in_order(meta, fields)
    columns = [f"t.{_column(f, db)}" for f in own]
    joined: list[Field[Any, Any]] = []
    source = f"{db.ops.quote_name(meta.db_table)} t"
    if related is not None:
        fk = _field(meta, related[0])
        target = fk.related_model._meta  # type: ignore[union-attr]
        joined = _in_order(target, related[1])
        columns += [f"r.{_column(f, db)}" for f in joined]
        source += (f" LEFT JOIN {db.ops.quote_name(target.db_table)} r"
                   f" ON r.{_column(target.pk, db)} = t.{_column(fk, db)}")
    keys = [_field(meta, name) for name in where]
    conditions = []
    for field, value in zip(keys, where.values(), strict=True):
        if value is None:
            conditions.append(f"t.{_column(field, db)} IS NULL")
        elif isinstance(value, tuple):
            conditions.append(f"t.{_column(field, db)} IN ({', '.join(['%s'] * len(value))})")
        else:
            conditions.append(f"t.{_column(field, db)} = %s")
    # Names from the models' metadata, quoted; every value is a parameter.
    sql = f"SELECT {', '.join(columns)} FROM {source} WHERE {' AND '.join(conditions)}"  # noqa: S608
    converters = []
    for field in (*own, *joined):
        col = field.get_col(field.model._meta.db_table)
        converters.append([(fn, col) for fn in (*db.ops.get_db_converters(col),
                                                 *field.get_db_converters(db))])
    return _SelectPlan(sql, own, joined, keys, converters)


def _in_order(meta: Options[Any], names: Sequence[str]) -> list[Field[Any, Any]]:
    wanted = {_field(meta, name).attname for name in names}
    return [f for f in meta.concrete_fields if f.primary_key or f.attname in wanted]
