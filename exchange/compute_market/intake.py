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

from django.db import transaction
from django.utils import timezone

from exchange.accounts.models import User
from exchange.compute_market.contributors import device_of
from exchange.compute_market.models import Assignment, AssignmentState, UnitOutput, WorkUnit
from exchange.compute_market.unit_decisions import rows_update, units_decide
from licensing.core import ComputeResult, LicensingError, read_compute_result
from licensing.core.device import DevicePublicKeys

MAX_BATCH = 256
_RETURNED_FIELDS = ["state", "returned_at", "token", "nonce", "output_sha256", "output_size",
                    "stop", "exit_status", "fuel", "runtime"]


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


def _reason(error: LicensingError) -> str:
    name = type(error).__name__.removesuffix("Error")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def results_submit(*, user: User, device_id: str, items: Sequence[ResultItem],
                   now: dt.datetime | None = None) -> list[ItemOutcome]:
    """Record a batch of results from one device; decide and pay the units they close."""
    device = device_of(user, device_id)
    keys = _device_keys(device.signing_public, device.kem_public, device.device_id)
    now = now or timezone.now()
    wanted = {item.assignment for item in items}
    # By primary key alone (the device checked here), so that no plan walks the device's
    # whole history of assignments.
    assignments = {a.pk: a for a in Assignment.objects.filter(pk__in=wanted)
                   .select_related("unit", "job")
                   .only("id", "state", "token", "device_id", "unit_id", "job_id", "unit__seq",
                         "unit__fuel_cap", "job__id", "job__runtime", "job__output_bytes")
                   if a.device_id == device.pk}
    outcomes: list[ItemOutcome] = []
    accepted: list[tuple[int, ResultItem, Assignment, ComputeResult]] = []
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
                outcomes.append(ItemOutcome(index, a.pk, ItemStatus.DUPLICATE))
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
            result = read_compute_result(item.token, device=keys, job_id=str(a.job_id),
                                         unit_id=a.unit.unit_id, now=int(now.timestamp()))
        except LicensingError as error:
            refuse(index, item, _reason(error), f"The signed result was refused: {error}")
            continue
        if result.runtime != a.job.runtime:
            refuse(index, item, "wrong_runtime",
                   f"The job runs under {a.job.runtime}, not {result.runtime}.")
            continue
        if result.fuel > a.unit.fuel_cap:
            refuse(index, item, "fuel_over_cap", "The result reports more fuel than the "
                                                 "unit's cap allows.")
            continue
        if result.output_size > a.job.output_bytes:
            refuse(index, item, "output_too_large", "The output is over the job's cap.")
            continue
        if (len(item.output) != result.output_size
                or hashlib.sha256(item.output).digest() != result.output_sha256):
            refuse(index, item, "output_mismatch",
                   "The output sent is not the output the signed result hashes.")
            continue
        accepted.append((index, item, a, result))
    # A signed result answers one assignment: its nonce may not come back for another.
    used = set(Assignment.objects.filter(device=device, nonce__in=[r.nonce for *_, r in accepted])
               .values_list("nonce", flat=True))
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
        unit_ids = sorted({a.unit_id for _, _, a, _ in accepted})
        list(WorkUnit.objects.select_for_update().filter(pk__in=unit_ids).order_by("id")
             .values_list("pk", flat=True))
        still_out = {pk for pk, state in Assignment.objects.select_for_update().filter(
            pk__in=[a.pk for _, _, a, _ in accepted]).values_list("pk", "state")
            if state == AssignmentState.ISSUED}
        recorded = []
        for index, item, a, result in accepted:
            if a.pk not in still_out:
                refuse(index, item, "late", "The assignment was closed while this result "
                                            "was on its way; it is not paid.")
                continue
            a.state, a.returned_at, a.token = AssignmentState.RETURNED, now, item.token
            a.nonce, a.output_sha256 = result.nonce, result.output_sha256.hex()
            a.output_size, a.stop, a.exit_status = result.output_size, result.stop.value, \
                result.exit_status
            a.fuel, a.runtime = result.fuel, result.runtime
            recorded.append((index, item, a, result))
        # One statement for the batch (their rows are locked above, still out).
        rows_update(Assignment, [a for _, _, a, _ in recorded], _RETURNED_FIELDS)
        UnitOutput.objects.bulk_create(
            [UnitOutput(unit_id=a.unit_id, sha256=result.output_sha256.hex(), data=item.output)
             for _, item, a, result in recorded],
            ignore_conflicts=True)
        units_decide(unit_ids=[a.unit_id for _, _, a, _ in recorded], now=now)
    outcomes += [ItemOutcome(index, a.pk, ItemStatus.ACCEPTED) for index, _, a, _ in recorded]
    return sorted(outcomes, key=lambda o: o.index)
