"""Taking contributors' results in batches: each checked, recorded, and its unit decided.

A result is accepted only if it answers an assignment of this device that is still
out, is signed by this device's key for exactly that job and unit
(``pm-compute-result+jwt``), comes from the job's runtime profile, reports no more fuel
than the unit's cap, and carries the output its signature hashes, within the job's
output cap. Each item of a batch gets its own answer; a bad item costs nothing and
changes nothing. Sending the same signed result again is answered as before
(``duplicate``), so a client may retry a batch whose answer it lost.

Signatures are checked before the transaction opens (the CPU-bound part); then the
units are locked in id order, the results recorded, and the units decided and paid
(``unit_decisions``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from exchange.accounts.models import User
from exchange.compute_market.contributors import device_of
from exchange.compute_market.models import AssignmentState, UnitOutput, UnitState
from exchange.compute_market.unit_decisions import (
    as_uuid,
    by_arrival,
    live_of,
    postgres,
    run_sql,
    units_decide_locked,
    units_lock,
)
from exchange.core.errors import reason_of
from licensing.core import ComputeResult, LicensingError, read_compute_result
from licensing.core.device import DevicePublicKeys

MAX_BATCH = 256


class ItemStatus(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ResultItem:
    """One result as sent: the assignment it answers, the signed document, the output."""

    assignment: int
    token: str
    output: bytes


@dataclass(frozen=True)
class ItemOutcome:
    index: int
    assignment: int
    status: ItemStatus
    reason: str = ""
    message: str = ""


_keys: dict[str, DevicePublicKeys] = {}


def _device_keys(signing: str, kem: str, device_id: str) -> DevicePublicKeys:
    keys = _keys.get(device_id)
    if keys is None:
        keys = DevicePublicKeys.from_b64url(signing=signing, kem=kem)
        if len(_keys) > 10_000:
            _keys.clear()
        _keys[device_id] = keys
    return keys



class _Out(NamedTuple):
    """An assignment a result answers, with what checking it needs of its unit and job."""

    id: int
    state: str
    token: str
    device_id: str
    unit_id: int
    job_id: str
    unit_seq: int
    fuel_cap: int
    runtime: str
    output_bytes: int


# By primary key alone (the device checked in Python), so that no plan walks the
# device's whole history of assignments.
_READ = ("SELECT a.{assignment.id}, a.{assignment.state}, a.{assignment.token}, "
         "a.{assignment.device_id}, a.{assignment.unit_id}, a.{assignment.job_id}, "
         "u.{unit.seq}, u.{unit.fuel_cap}, j.{job.runtime}, j.{job.output_bytes} "
         "FROM {assignment.table} a "
         "JOIN {unit.table} u ON u.{unit.id} = a.{assignment.unit_id} "
         "JOIN {job.table} j ON j.{job.id} = a.{assignment.job_id} "
         "WHERE a.{assignment.id}{any:ids:bigint}")
# The device's used nonces among these (``IS NOT NULL``: the unique index's predicate).
_USED = ("SELECT {assignment.nonce} FROM {assignment.table} WHERE {assignment.device_id} = %s "
         "AND {assignment.nonce} IS NOT NULL AND {assignment.nonce}{any:nonces:varchar}")
_OUTPUTS = ("INSERT INTO {output.table} ({output.unit_id}, {output.sha256}, {output.data}) "
            "SELECT * FROM UNNEST(%b::bigint[], %b::varchar[], %b::bytea[]) "
            "ON CONFLICT DO NOTHING")


def results_submit(*, user: User, device_id: str, items: Sequence[ResultItem],
                   now: dt.datetime | None = None) -> list[ItemOutcome]:
    """Record a batch of results from one device; decide and pay the units they close.

    Rows are read and written as tuples, a statement per kind of change
    (``unit_decisions``: the statements written by hand, and why)."""
    device = device_of(user, device_id)
    keys = _device_keys(device.signing_public, device.kem_public, device.device_id)
    now = now or timezone.now()
    stamp = int(now.timestamp())
    wanted = sorted({item.assignment for item in items})
    assignments = {row[0]: _Out._make((*row[:5], str(as_uuid(row[5])), *row[6:]))
                   for row in run_sql(_READ, lists={"ids": wanted})
                   if row[3] == device.pk}
    outcomes: list[ItemOutcome] = []
    accepted: list[tuple[int, ResultItem, _Out, ComputeResult]] = []
    seen: set[int] = set()

    def refuse(index: int, item: ResultItem, reason: str, message: str) -> None:
        outcomes.append(ItemOutcome(index, item.assignment, ItemStatus.REJECTED, reason, message))

    for index, item in enumerate(items):
        a = assignments.get(item.assignment)
        if a is None:
            refuse(index, item, "unknown_assignment", "No such assignment for this device.")
            continue
        if item.assignment in seen:
            refuse(index, item, "repeated", "This assignment appears twice in the batch.")
            continue
        seen.add(item.assignment)
        if a.state == AssignmentState.RETURNED:
            if a.token == item.token:
                outcomes.append(ItemOutcome(index, a.id, ItemStatus.DUPLICATE))
            else:
                refuse(index, item, "already_returned",
                       "A different result was already returned for this assignment.")
            continue
        if a.state == AssignmentState.EXPIRED:
            refuse(index, item, "late", "The assignment's deadline passed and the unit was "
                                        "given to another device; this result is not paid.")
            continue
        if a.state == AssignmentState.CANCELLED:
            refuse(index, item, "unit_closed", "The unit was closed (validated, failed or "
                                               "cancelled) before this result arrived.")
            continue
        try:
            result = read_compute_result(item.token, device=keys, job_id=a.job_id,
                                         unit_id=str(a.unit_seq), now=stamp)
        except LicensingError as error:
            refuse(index, item, reason_of(error), f"The signed result was refused: {error}")
            continue
        if result.runtime != a.runtime:
            refuse(index, item, "wrong_runtime",
                   f"The job runs under {a.runtime}, not {result.runtime}.")
            continue
        if result.fuel > a.fuel_cap:
            refuse(index, item, "fuel_over_cap", "The result reports more fuel than the "
                                                 "unit's cap allows.")
            continue
        if result.output_size > a.output_bytes:
            refuse(index, item, "output_too_large", "The output is over the job's cap.")
            continue
        if (len(item.output) != result.output_size
                or hashlib.sha256(item.output).digest() != result.output_sha256):
            refuse(index, item, "output_mismatch",
                   "The output sent is not the output the signed result hashes.")
            continue
        accepted.append((index, item, a, result))
    # A signed result answers one assignment: its nonce may not come back for another.
    used = {nonce for (nonce,) in run_sql(_USED, [device.pk],
                                          lists={"nonces": [r.nonce for *_, r in accepted]})
            } if accepted else set()
    fresh = []
    for entry in accepted:
        index, item, _a, result = entry
        if result.nonce in used:
            refuse(index, item, "replayed", "This signed result was already used.")
            continue
        used.add(result.nonce)
        fresh.append(entry)
    accepted = fresh
    if not accepted:
        return sorted(outcomes, key=lambda o: o.index)
    with transaction.atomic():
        # Lock the units first (id order, as every other writer does), then take each
        # assignment only if it is still out: a reclaim may have expired it meanwhile.
        units = units_lock({a.unit_id for _, _, a, _ in accepted})
        live = {a.id: a for a in live_of([u.id for u in units])}
        recorded = []
        for index, item, a, result in accepted:
            held = live.get(a.id)
            if held is None or held.state != AssignmentState.ISSUED:
                refuse(index, item, "late", "The assignment was closed while this result "
                                            "was on its way; it is not paid.")
                continue
            live[a.id] = held._replace(
                state=AssignmentState.RETURNED.value, returned_at=now,
                output_sha256=result.output_sha256.hex(), output_size=result.output_size,
                stop=result.stop.value, exit_status=result.exit_status, fuel=result.fuel,
                runtime=result.runtime)
            recorded.append((index, item, a, result))
        if recorded:
            _outputs_store(recorded)
            closing = {a.unit_id for _, _, a, _ in recorded}
            # The results are written with their verdicts, one statement for the batch
            # (their rows are locked: their units are).
            rows = [live[a.id] for _, _, a, _ in recorded]
            units_decide_locked(
                [u for u in units if u.id in closing and u.state == UnitState.PENDING],
                by_arrival(live.values()), now=now, record={
                    "id": [a.id for a in rows],
                    "state": [a.state for a in rows],
                    "returned_at": [now] * len(rows),
                    "token": [item.token for _, item, _, _ in recorded],
                    "nonce": [result.nonce for *_, result in recorded],
                    **{name: [getattr(a, name) for a in rows]
                       for name in ("output_sha256", "output_size", "stop", "exit_status",
                                    "fuel", "runtime")}})
    outcomes += [ItemOutcome(index, a.id, ItemStatus.ACCEPTED) for index, _, a, _ in recorded]
    return sorted(outcomes, key=lambda o: o.index)


def _outputs_store(recorded: list[tuple[int, ResultItem, _Out, ComputeResult]]) -> None:
    """The outputs sent, once per unit and content: one statement for the batch."""
    unit_ids = [a.unit_id for _, _, a, _ in recorded]
    hashes = [result.output_sha256.hex() for *_, result in recorded]
    outputs = [item.output for _, item, _, _ in recorded]
    if postgres():
        run_sql(_OUTPUTS, [unit_ids, hashes, outputs], fetch=False)
    else:
        UnitOutput.objects.bulk_create(
            [UnitOutput(unit_id=u, sha256=h, data=d)
             for u, h, d in zip(unit_ids, hashes, outputs, strict=True)],
            ignore_conflicts=True)
