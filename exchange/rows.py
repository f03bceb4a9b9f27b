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

from collections.abc import Callable, Mapping, Sequence
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


_inserts: dict[tuple[type[Model], str], tuple[str, list[Field[Any, Any]], bool]] = {}
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
    parameters bound on the server psycopg prepares each one on its fifth use and later
    runs only bind and execute: in benchmarks/money/run.py that cut the server's CPU per
    sale by about a fifth and the client's psycopg work besides. Only this cursor binds
    on the server; the rest of the ORM keeps Django's default, whose queries are not all
    valid with server-side parameters.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    raw = db.connection
    factory = raw.cursor_factory
    raw.cursor_factory = ServerBindingCursor
    try:
        return db.cursor()  # Django's own wrapping: time zone, debug logging, errors
    finally:
        raw.cursor_factory = factory


def _field(meta: Options[Any], name: str) -> Field[Any, Any]:
    field = meta.get_field(name)
    if not isinstance(field, Field) or not field.concrete:
        raise ValueError(f"{meta.label}.{name} is not a column")
    return field


def _column(field: Field[Any, Any], db: BaseDatabaseWrapper) -> str:
    return db.ops.quote_name(str(field.column))


def insert(obj: M) -> M:
    """INSERT ``obj`` as a new row, as ``obj.save(force_insert=True)`` would."""
    db = _db()
    model = type(obj)
    meta = model._meta
    plan = _inserts.get((model, db.vendor))
    if plan is None:
        auto = meta.auto_field
        fields = [f for f in meta.concrete_fields if f is not auto and not f.generated]
        returning = auto is not None and db.features.can_return_columns_from_insert
        # Names from the model's metadata, quoted; every value is a parameter.
        sql = (f"INSERT INTO {db.ops.quote_name(meta.db_table)} "  # noqa: S608
               f"({', '.join(_column(f, db) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        if returning:
            assert isinstance(auto, Field)
            sql += f" RETURNING {_column(auto, db)}"
        plan = _inserts[(model, db.vendor)] = (sql, fields, returning)
    sql, fields, returning = plan
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), db) for f in fields]
    cursor = kept_cursor(db)
    with transaction.mark_for_rollback_on_error(db.alias):  # as Model.save does
        cursor.execute(sql, values)
        if meta.auto_field is not None:
            obj.pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    obj._state.adding = False
    obj._state.db = db.alias
    return obj


def update(obj: Model, fields: Sequence[str]) -> None:
    """UPDATE ``fields`` of ``obj``'s row, as ``obj.save(update_fields=fields)`` would."""
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
    cursor = kept_cursor(db)
    with transaction.mark_for_rollback_on_error(db.alias):  # as Model.save does
        cursor.execute(sql, values)
    if cursor.rowcount != 1:
        raise DatabaseError(f"{meta.label} {obj.pk} was not updated: no such row")


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
