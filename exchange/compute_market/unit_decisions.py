"""Applying the quorum's decision to units, and paying for the validated ones.

Runs inside the caller's transaction (an intake of results, a reclaim of overdue
assignments), with the units locked in id order. A validated unit is paid at once:
one ledger entry per job and call moves the charges out of the job's escrow, to each
agreeing device's member (compute credit) and to the platform's fees. A job none of
whose units is left pending is finished after the commit (see ``jobs_lifecycle``).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

from exchange.compute_market.contributors import standing_apply
from exchange.compute_market.earnings import earnings_accrue, payment_post
from exchange.compute_market.jobs_lifecycle import job_finish_if_done
from exchange.compute_market.models import (
    Assignment,
    AssignmentState,
    ComputeJob,
    UnitOutput,
    UnitState,
    Verdict,
    WorkUnit,
)
from exchange.compute_market.pricing import device_accrual, fee_accrual
from exchange.compute_market.quorum import Decision, Outcome, Returned, decide

_LIVE = (AssignmentState.ISSUED, AssignmentState.RETURNED)

# -- statements written by hand, for the hot path ---------------------------------------
#
# Dispatch and intake run a dozen statements per batch of up to 256 rows. Through the
# ORM each one cost more Python than the database took to run it: a model instance per
# row read or written, a CASE per row for ``bulk_update``, ``IN (%s, %s, …)`` with one
# parameter per id (a statement text that changes with the batch's size, so that
# psycopg re-parses it and PostgreSQL never keeps it prepared). Here, on PostgreSQL:
# rows as tuples, one array parameter per column (``= ANY(%b)``, ``UNNEST``; sent in
# binary), so every statement's text is fixed and is prepared once per connection;
# each checked for a bounded plan on tables without statistics. Table and column
# names come from the models' metadata; every value is a parameter. Elsewhere
# (SQLite: tests, development) the same statements with ``IN (…)`` lists.


class _Names:
    """A model's table and columns, quoted, as templates name them: ``{unit.table}``,
    ``{unit.open_slots}``, ``{assignment.unit_id}`` (a foreign key by either name)."""

    def __init__(self, model: type[Model]) -> None:
        qn = connection.ops.quote_name
        self.table = qn(model._meta.db_table)
        for field in model._meta.concrete_fields:
            setattr(self, field.name, qn(str(field.column)))
            setattr(self, field.attname, qn(str(field.column)))


def _models() -> dict[str, type[Model]]:
    from exchange.compute_market.models import Contributor, JobEarning

    return {"unit": WorkUnit, "assignment": Assignment, "output": UnitOutput, "job": ComputeJob,
            "earning": JobEarning, "contributor": Contributor}


_NAME = re.compile(r"\{(\w+)\.(\w+)\}")
_ANY = re.compile(r"\{any:(\w+):(\w+)\}")
_PARAM = re.compile(r"%[sb]")


@functools.cache
def _statement(template: str, vendor: str) -> tuple[str, tuple[tuple[str, int], ...]]:
    """The template with names filled in and, on PostgreSQL, its lists as arrays; and
    for each list (in the text's order) its name and how many parameters precede it."""
    names = {key: _Names(model) for key, model in _models().items()}
    sql = _NAME.sub(lambda m: str(getattr(names[m[1]], m[2])), template)
    lock = connection.ops.for_update_sql() if connection.features.has_select_for_update else ""
    skip = (connection.ops.for_update_sql(skip_locked=True)
            if connection.features.has_select_for_update_skip_locked else "")
    sql = sql.replace("{for_update}", lock).replace("{skip_locked}", skip)
    lists = []
    for match in _ANY.finditer(sql):
        lists.append((match[1], len(_PARAM.findall(sql, 0, match.start()))))
    if vendor == "postgresql":
        sql = _ANY.sub(lambda m: f" = ANY(%b::{m[2]}[])", sql)
    return sql, tuple(lists)


def postgres() -> bool:
    return connection.vendor == "postgresql"


_NO_LISTS: Mapping[str, Sequence[Any]] = {}


def run_sql(template: str, params: Sequence[Any] = (), *,
            lists: Mapping[str, Sequence[Any]] = _NO_LISTS,
            fetch: bool = True) -> list[tuple[Any, ...]]:
    """Run ``template`` (names as in ``_Names``, values as ``%s`` parameters from
    ``params``), return its rows.

    ``{any:NAME:TYPE}`` after a column is membership in the list ``lists[NAME]``:
    ``= ANY(%b::TYPE[])`` on PostgreSQL (one parameter however long the list, so the
    text never changes; sent in binary: psycopg's text form of an array costs far more
    Python, a regular expression per item), ``IN (%s, …)`` elsewhere (``IN (NULL)``,
    never true, for an empty list).
    ``{for_update}`` and ``{skip_locked}`` are the row locks, where the database has them.
    """
    vendor = connection.vendor
    sql, placed = _statement(template, vendor)
    values: list[Any] = []
    used = 0
    for name, before in placed:
        values += params[used:before]
        used = before
        values.append(list(lists[name]))
    values += params[used:]
    if vendor != "postgresql" and placed:
        # Expand each list in place: ``IN (%s, …)``, its items as parameters.
        flat: list[Any] = []
        pieces = _ANY.split(sql)  # text, name, type, text, name, type, text…
        text = [pieces[0]]
        flat_index = 0
        for i in range(1, len(pieces), 3):
            count = len(_PARAM.findall(pieces[i - 1]))
            flat += values[flat_index:flat_index + count]
            flat_index += count
            items = values[flat_index]
            flat_index += 1
            flat += items
            text.append(f" IN ({', '.join(['%s'] * len(items))})" if items else " IN (NULL)")
            text.append(pieces[i + 2])
        flat += values[flat_index:]
        sql, values = "".join(text), flat
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return cursor.fetchall() if fetch else []


def columns_update(model: type[Model], pks: Sequence[Any],
                   values: Mapping[str, Sequence[Any]]) -> None:
    """Set each row ``pks[i]`` (rows the caller has locked) to ``values[field][i]``: one
    ``UPDATE … FROM UNNEST(one array per column)`` on PostgreSQL, one ``UPDATE`` a row
    elsewhere. The values are as the database stores them (text, integers, None,
    aware datetimes): on PostgreSQL they go to psycopg as they are."""
    if not pks:
        return
    columns = [cast("Field[Any, Any]", model._meta.get_field(name)) for name in values]
    if connection.vendor != "postgresql":
        for index, pk_value in enumerate(pks):
            model._base_manager.filter(pk=pk_value).update(
                **{field.name: values[field.name][index] for field in columns})
        return
    qn = connection.ops.quote_name
    pk = model._meta.pk
    assert pk is not None
    table = qn(model._meta.db_table)
    # One array per column: the statement's text is the same whatever the batch's size
    # (parsed and prepared once), and its parameters are a dozen, not thousands.
    arrays = ", ".join(f"%b::{field.cast_db_type(connection)}[]" for field in [pk, *columns])
    names = ", ".join(qn(str(field.column)) for field in [pk, *columns])
    sets = ", ".join(f"{qn(str(field.column))} = v.{qn(str(field.column))}" for field in columns)
    sql = (f"UPDATE {table} SET {sets} FROM UNNEST({arrays}) AS v({names}) "  # noqa: S608
           f"WHERE {table}.{qn(str(pk.column))} = v.{qn(str(pk.column))}")
    params = [list(pks), *(list(values[field.name]) for field in columns)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def rows_update(model: type[Model], objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of each of ``objs`` (rows the caller has locked) back, in one
    statement on PostgreSQL (``columns_update``, each value prepared by its field)."""
    columns = [cast("Field[Any, Any]", model._meta.get_field(name)) for name in fields]
    pg = postgres()
    columns_update(model, [obj.pk for obj in objs], {
        field.name: [field.get_db_prep_save(getattr(obj, field.attname), connection) if pg
                     else getattr(obj, field.attname) for obj in objs] for field in columns})


# -- deciding units -------------------------------------------------------------------


class LockedUnit(NamedTuple):
    """A pending unit, locked for deciding."""

    id: int
    job_id: uuid.UUID
    quorum: int
    issued_count: int
    open_slots: int
    state: str
    seq: int


class Live(NamedTuple):
    """An assignment of a unit being decided (issued or returned)."""

    id: int
    unit_id: int
    device_id: str
    user_id: int
    state: str
    returned_at: dt.datetime | None
    output_sha256: str
    output_size: int | None
    stop: str
    exit_status: int | None
    fuel: int | None
    runtime: str


_LOCK_UNITS = ("SELECT {unit.id}, {unit.job_id}, {unit.quorum}, {unit.issued_count}, "
               "{unit.open_slots}, {unit.state}, {unit.seq} FROM {unit.table} "
               "WHERE {unit.id}{any:units:bigint} ORDER BY {unit.id} {for_update}")
_READ_LIVE = ("SELECT {assignment.id}, {assignment.unit_id}, {assignment.device_id}, "
              "{assignment.user_id}, {assignment.state}, {assignment.returned_at}, "
              "{assignment.output_sha256}, {assignment.output_size}, {assignment.stop}, "
              "{assignment.exit_status}, {assignment.fuel}, {assignment.runtime} "
              "FROM {assignment.table} WHERE {assignment.unit_id}{any:units:bigint}")


def as_uuid(value: Any) -> uuid.UUID:
    """A UUID column's raw value (PostgreSQL gives a UUID; SQLite 32 hex digits)."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _aware(value: Any) -> dt.datetime | None:
    """A datetime column's raw value (SQLite gives naive UTC, or text)."""
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def units_lock(unit_ids: Iterable[int]) -> list[LockedUnit]:
    """Lock the units, in id order (as every writer of the market does), and read them.

    By primary key alone, the state left to the caller: with the state in the statement
    too, a prepared statement's generic plan (a table not analysed yet) scanned every
    pending unit through the (job, state) index instead."""
    return [LockedUnit(row[0], as_uuid(row[1]), *row[2:])
            for row in run_sql(_LOCK_UNITS, lists={"units": sorted(set(unit_ids))})]


def live_of(unit_ids: Sequence[int]) -> list[Live]:
    """The issued and returned assignments of units the caller has locked, in the order
    they came back (``by_arrival``).

    Not locked themselves: every writer of an assignment holds its unit's lock (dispatch
    inserts under it; intake, reclaim and expiry lock the unit first), so they cannot
    change under the caller. The state is filtered here, not in the statement, for the
    plan's sake (as above)."""
    pg = postgres()
    rows = run_sql(_READ_LIVE, lists={"units": unit_ids})
    if not pg:
        rows = [(*row[:5], _aware(row[5]), *row[6:]) for row in rows]
    return by_arrival([Live(*row) for row in rows if row[4] in _LIVE])


_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)


def by_arrival(live: Iterable[Live]) -> list[Live]:
    """As ``ORDER BY returned_at, id``: returned first, by time, then the ones still out
    (NULLs last, as PostgreSQL sorts them)."""
    return sorted(live, key=lambda a: (a.returned_at or _NEVER, a.id))


def _agreement(a: Live) -> tuple[str, int, str, int | None, int, str]:
    return (a.output_sha256, a.output_size or 0, a.stop, a.exit_status, a.fuel or 0, a.runtime)


def units_decide(*, unit_ids: Iterable[int], now: dt.datetime | None = None) -> dict[int, Outcome]:
    """Decide each pending unit again from its assignments; apply and pay."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("units_decide must run inside transaction.atomic()")
    units = [unit for unit in units_lock(unit_ids) if unit.state == UnitState.PENDING]
    if not units:
        return {}
    return units_decide_locked(units, live_of([u.id for u in units]), now=now)


def units_decide_locked(units: Sequence[LockedUnit], live: Sequence[Live], *,
                        now: dt.datetime | None = None,
                        record: Mapping[str, Sequence[Any]] | None = None) -> dict[int, Outcome]:
    """``units_decide`` for pending units the caller has locked (``units_lock``), given
    their live assignments as they stand now (``live_of``, in that order).

    ``record`` (``{"id": [...], field: [...]}``, as ``columns_update`` takes them) are
    results the caller has just taken (``live`` shows them returned) and not written
    yet: each is written here once, with its verdict, rather than twice."""
    now = now or timezone.now()
    if not units:
        if record:
            columns_update(Assignment, record["id"],
                           {k: v for k, v in record.items() if k != "id"})
        return {}
    jobs = {j.pk: j for j in ComputeJob.objects.filter(pk__in={u.job_id for u in units})}
    by_unit: defaultdict[int, list[Live]] = defaultdict(list)
    for a in live:
        by_unit[a.unit_id].append(a)
    standing: defaultdict[str, Counter[str]] = defaultdict(Counter)
    verdicts: dict[int, Verdict] = {}
    pay: defaultdict[uuid.UUID, list[tuple[LockedUnit, Decision, list[Live]]]] = (
        defaultdict(list))
    closed: list[tuple[LockedUnit, str]] = []
    reopened: defaultdict[int, list[int]] = defaultdict(list)  # open slots -> units
    failed: list[int] = []
    cancelled: list[int] = []  # outstanding assignments of closed units
    outcomes: dict[int, Outcome] = {}
    for unit in units:
        job = jobs[unit.job_id]
        mine = by_unit[unit.id]
        returned = [a for a in mine if a.state == AssignmentState.RETURNED]
        outstanding = [a for a in mine if a.state == AssignmentState.ISSUED]
        decision = decide(quorum=unit.quorum,
                          returned=[Returned(a.id, _agreement(a)) for a in returned],
                          outstanding=len(outstanding), issued=unit.issued_count,
                          max_results=job.max_results)
        outcomes[unit.id] = decision.outcome
        if decision.outcome is Outcome.WAIT:
            if unit.open_slots != decision.open_slots:
                reopened[decision.open_slots].append(unit.id)
            continue
        closed.append((unit, decision.agreed[0] if decision.agreed else ""))
        device_of = {a.id: a.device_id for a in mine}
        for pk in decision.no_vote:
            verdicts[pk] = Verdict.NO_VOTE
            standing[device_of[pk]]["no_vote"] += 1
        if decision.outcome is Outcome.VALIDATED:
            for pk in decision.agreeing:
                verdicts[pk] = Verdict.AGREED
                standing[device_of[pk]]["agreed"] += 1
            for pk in decision.disagreeing:
                verdicts[pk] = Verdict.DISAGREED
                standing[device_of[pk]]["disagreed"] += 1
            pay[job.pk].append((unit, decision, mine))
        else:
            for a in returned:
                verdicts.setdefault(a.id, Verdict.UNCHECKED)
            failed.append(unit.id)
        cancelled += [a.id for a in outstanding]
    # One statement per kind of change, not one per unit.
    for slots, pks in sorted(reopened.items()):
        WorkUnit.objects.filter(pk__in=pks).update(open_slots=slots)
    if failed:
        WorkUnit.objects.filter(pk__in=failed).update(
            state=UnitState.FAILED, open_slots=0, closed_at=now,
            detail="the devices' results did not reach a quorum")
    if cancelled:
        Assignment.objects.filter(pk__in=cancelled).update(
            state=AssignmentState.CANCELLED, verdict=Verdict.UNCHECKED)
    if record:
        fields = {k: v for k, v in record.items() if k != "id"}
        fields["verdict"] = [verdicts.pop(pk, Verdict.PENDING).value for pk in record["id"]]
        columns_update(Assignment, record["id"], fields)
    if verdicts:
        ordered = sorted(verdicts.items())
        columns_update(Assignment, [pk for pk, _ in ordered],
                       {"verdict": [str(v) for _, v in ordered]})
    # Keep only the agreed output of each closed unit (usually the only one there is).
    if closed:
        _outputs_prune({unit.id: agreed for unit, agreed in closed})
    standing_apply(standing)
    # The payments last: the job's escrow and its fee row are what concurrent intakes of
    # one job wait for, so they are locked as late, and held as briefly, as can be.
    for job_id, validated in sorted(pay.items()):
        _validate_and_pay(jobs[job_id], validated, now=now)
    for job_id in sorted({unit.job_id for unit, _ in closed}):
        transaction.on_commit(functools.partial(_finish_if_done, job_id))
    return outcomes


# (``o.unit_id = ANY`` as well as the join: without it, on a table without statistics,
# the plan was a hash join over a sequential scan of every output stored.)
_PRUNE = ("DELETE FROM {output.table} AS o USING UNNEST(%b::bigint[], %b::varchar[]) "
          "AS v(unit_id, sha256) WHERE o.{output.unit_id} = ANY(%b::bigint[]) "
          "AND o.{output.unit_id} = v.unit_id AND o.{output.sha256} <> v.sha256")


def _outputs_prune(agreed_of: dict[int, str]) -> None:
    """Delete every output of these (closed) units but the agreed one: one statement on
    PostgreSQL, by the (unit, sha256) index."""
    if postgres():
        ordered = sorted(agreed_of.items())
        units = [u for u, _ in ordered]
        run_sql(_PRUNE, [units, [sha for _, sha in ordered], units], fetch=False)
        return
    other = [pk for pk, unit_id, sha256 in UnitOutput.objects.filter(
        unit_id__in=list(agreed_of)).values_list("pk", "unit_id", "sha256")
        if sha256 != agreed_of[unit_id]]
    if other:
        UnitOutput.objects.filter(pk__in=other).delete()


def _finish_if_done(job_id: uuid.UUID) -> None:
    """After the commit: finish the job if none of its units is left pending.

    Looked at first without a lock (one indexed read): while units are pending, which is
    after nearly every intake, the job's row is not locked at all. Safe: each intake that
    closes units looks after its own commit, so the last of them to commit sees the last
    pending unit gone and finishes the job (``job_finish_if_done`` checks again, locked).
    """
    if WorkUnit.objects.filter(job_id=job_id, state=UnitState.PENDING).exists():
        return
    job_finish_if_done(job_id=job_id)


def _validate_and_pay(job: ComputeJob,
                      validated: list[tuple[LockedUnit, Decision, list[Live]]],
                      *, now: dt.datetime) -> None:
    """Close the validated units with their agreed result, accrue each agreeing member's
    and the platform's exact earnings, and pay the whole minor units accrued: one entry."""
    # per party (a member, or None for the fee): exact value, results, fuel
    earned: dict[int | None, list[int]] = {}
    price, fee_bps = job.price_per_tfuel_minor, job.fee_bps
    pks: list[int] = []
    agreed: list[tuple[str, int, str, int | None, int, str]] = []
    for unit, decision, live in validated:
        assert decision.agreed is not None
        fuel = decision.agreed[4]
        agreeing = set(decision.agreeing)
        devices = 0
        for assignment in live:
            if assignment.id not in agreeing:
                continue
            devices += 1
            part = earned.get(assignment.user_id)
            if part is None:
                part = earned[assignment.user_id] = [0, 0, 0]
            part[0] += device_accrual(fuel=fuel, price_per_tfuel=price)
            part[1] += 1
            part[2] += fuel
        fee = earned.get(None)
        if fee is None:
            fee = earned[None] = [0, 0, 0]
        fee[0] += fee_accrual(fuel=fuel, devices=devices, price_per_tfuel=price,
                              fee_bps=fee_bps)
        pks.append(unit.id)
        agreed.append(decision.agreed)
    # One statement for the batch's units (locked by the caller).
    count = len(pks)
    columns_update(WorkUnit, pks, {
        "state": [UnitState.VALIDATED.value] * count, "open_slots": [0] * count,
        "closed_at": [now] * count, "output_sha256": [a[0] for a in agreed],
        "output_size": [a[1] for a in agreed], "stop": [a[2] for a in agreed],
        "exit_status": [a[3] for a in agreed], "fuel": [a[4] for a in agreed]})
    due = earnings_accrue(job, {party: (value, units, fuel)
                                for party, (value, units, fuel) in earned.items()})
    payment_post(job, due, units=count, final=False)
