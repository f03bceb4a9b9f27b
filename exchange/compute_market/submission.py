"""Accepting a customer's job: the module checked, the units stored, the budget held.

A module is checked on upload exactly as a contributor's sandbox checks it (format,
size, imports against the allow-list, a WASI command), so a job that could never run
is refused before any money moves. A job is accepted in one transaction: its whole
budget moves from the customer's wallet into the job's own escrow account, and its
units are stored ready for dispatch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from compute.errors import ModuleRejectedError
from compute.limits import GIB, MIB, WASM_PAGE
from compute.module_check import check_module
from compute.profile import runtime_profile
from compute.sandbox import make_engine
from compute.unit import DEFAULT_ARGS, MAX_ARGS_BYTES
from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.compute_market.models import ComputeJob, ComputeModule, WorkUnit
from exchange.compute_market.pricing import job_budget
from exchange.core.errors import ServiceError
from exchange.core.fields import INT64_MAX
from exchange.ledger.models import Account, AccountKind, EntryKind
from exchange.ledger.services import (
    InsufficientFundsError,
    Leg,
    account_get_or_create,
    ledger_post,
)
from exchange.money.currencies import format_minor

MAX_MODULE_BYTES = 8 * MIB
MAX_UNITS = 10_000
MAX_UNIT_INPUT_BYTES = 1 * MIB
MAX_JOB_INPUT_BYTES = 64 * MIB
MAX_OUTPUT_BYTES = 16 * MIB
MAX_FUEL_CAP = 10**13
MAX_REPLICATION = 5
MAX_PRICE = 10**12
MAX_DEADLINE = dt.timedelta(days=30)
MIN_UNIT_SECONDS, MAX_UNIT_SECONDS = 10, 86_400


def module_store(*, user: User, wasm: bytes) -> ComputeModule:
    """Check a module and keep it under its SHA-256 (the same bytes again: the same row)."""
    digest = hashlib.sha256(wasm).hexdigest()
    existing = ComputeModule.objects.filter(pk=digest).defer("wasm").first()
    if existing is not None:
        return existing
    try:
        module = check_module(make_engine(), wasm, max_bytes=MAX_MODULE_BYTES)
    except ModuleRejectedError as error:
        raise ServiceError(_("The module was refused: %(reason)s.") % {"reason": error},
                           code="module_rejected", status_code=400, field="module") from None
    imports = sorted(item.name or "" for item in module.imports)
    stored, _created = ComputeModule.objects.get_or_create(
        sha256=digest, defaults={"size": len(wasm), "wasm": bytes(wasm), "imports": imports,
                                 "uploaded_by": user})
    if _created:
        audit_record(actor=user, action="compute.module_store", target=stored,
                     data={"size": len(wasm)})
    return stored


@dataclass(frozen=True)
class UnitSpec:
    """A unit as the customer gives it: standard input, fuel cap, an optional label."""

    input: bytes = field(repr=False)
    fuel: int
    label: str = ""


@dataclass(frozen=True)
class JobSpec:
    name: str
    module_sha256: str
    units: Sequence[UnitSpec]
    currency: str
    price_per_tfuel_minor: int
    replication: int = 2
    deadline: dt.datetime | None = None
    unit_seconds: int = 600
    memory_bytes: int = 256 * MIB
    output_bytes: int = 1 * MIB
    args: Sequence[str] = DEFAULT_ARGS
    presentation: dict[str, object] = field(default_factory=dict)


def _bad(message: str, field_name: str) -> ServiceError:
    return ServiceError(message, code="invalid", status_code=400, field=field_name)


def _check_spec(spec: JobSpec, now: dt.datetime) -> dt.datetime:
    if not 1 <= len(spec.units) <= MAX_UNITS:
        raise _bad(_("A job has from 1 to %(n)s units.") % {"n": f"{MAX_UNITS:,}"}, "units")
    total = 0
    for index, unit in enumerate(spec.units):
        if len(unit.input) > MAX_UNIT_INPUT_BYTES:
            raise _bad(_("Unit %(i)s: its input is over %(n)s bytes.")
                       % {"i": index, "n": f"{MAX_UNIT_INPUT_BYTES:,}"}, "units")
        if type(unit.fuel) is not int or not 1 <= unit.fuel <= MAX_FUEL_CAP:
            raise _bad(_("Unit %(i)s: the fuel cap is a whole number from 1 to %(n)s.")
                       % {"i": index, "n": f"{MAX_FUEL_CAP:,}"}, "units")
        total += len(unit.input)
    if total > MAX_JOB_INPUT_BYTES:
        raise _bad(_("The units' inputs add up to more than %(n)s bytes.")
                   % {"n": f"{MAX_JOB_INPUT_BYTES:,}"}, "units")
    if not 2 <= spec.replication <= MAX_REPLICATION:
        raise _bad(_("Replication is from 2 to %(n)s: every unit is checked by at least two "
                     "devices.") % {"n": MAX_REPLICATION}, "replication")
    if not 1 <= spec.price_per_tfuel_minor <= MAX_PRICE:
        raise _bad(_("The price per trillion fuel is a whole number of minor units from 1 to "
                     "%(n)s.") % {"n": f"{MAX_PRICE:,}"}, "price_per_tfuel_minor")
    if not MIN_UNIT_SECONDS <= spec.unit_seconds <= MAX_UNIT_SECONDS:
        raise _bad(_("A device's time per unit is from %(a)s to %(b)s seconds.")
                   % {"a": MIN_UNIT_SECONDS, "b": MAX_UNIT_SECONDS}, "unit_seconds")
    if not WASM_PAGE <= spec.memory_bytes <= 4 * GIB:
        raise _bad(_("The memory cap is from 64 KiB to 4 GiB."), "memory_bytes")
    if not 0 <= spec.output_bytes <= MAX_OUTPUT_BYTES:
        raise _bad(_("The output cap is at most %(n)s bytes.") % {"n": f"{MAX_OUTPUT_BYTES:,}"},
                   "output_bytes")
    encoded = [a.encode("utf-8") for a in spec.args]
    if not spec.args or any(b"\0" in a for a in encoded) or (
            sum(len(a) + 1 for a in encoded) > MAX_ARGS_BYTES):
        raise _bad(_("The arguments are 1 or more strings without NUL, at most 64 KiB."), "args")
    deadline = spec.deadline or now + dt.timedelta(days=7)
    if not now < deadline <= now + MAX_DEADLINE:
        raise _bad(_("The deadline is in the future, at most 30 days ahead."), "deadline")
    return deadline


def _customer_accounts(customer: User, currency: str) -> Account:
    wallet = Account.objects.filter(kind=AccountKind.WALLET, owner=customer, currency=currency,
                                    reference="").first()
    if wallet is not None:
        return wallet
    others = sorted(Account.objects.filter(kind=AccountKind.WALLET, owner=customer, reference="",
                                           balance__gt=0).values_list("currency", flat=True))
    if others:
        raise ServiceError(
            _("This job is priced in %(currency)s; your wallet holds %(held)s. Top up in "
              "%(currency)s or price the job in your wallet's currency.")
            % {"currency": currency, "held": ", ".join(others)},
            code="currency_mismatch", status_code=409, field="currency")
    raise InsufficientFundsError(_("Your %(currency)s wallet is empty; top up first.")
                                 % {"currency": currency})


def job_submit(*, customer: User, spec: JobSpec, now: dt.datetime | None = None) -> ComputeJob:
    """Accept a job: budget from the wallet into the job's escrow, units stored."""
    now = now or timezone.now()
    deadline = _check_spec(spec, now)
    module = ComputeModule.objects.filter(pk=spec.module_sha256).defer("wasm").first()
    if module is None:
        raise ServiceError(_("No such module; upload it first."), code="unknown_module",
                           status_code=404, field="module")
    fee_bps = settings.COMPUTE_FEE_BPS
    budget = job_budget(fuel_caps=(u.fuel for u in spec.units), replication=spec.replication,
                        price_per_tfuel=spec.price_per_tfuel_minor, fee_bps=fee_bps)
    if budget > INT64_MAX:
        raise _bad(_("The budget is too large."), "units")
    wallet = _customer_accounts(customer, spec.currency)
    with transaction.atomic(savepoint=False):
        job = ComputeJob.objects.create(
            customer=customer, name=spec.name[:100] or _("Compute job"), module=module,
            args=list(spec.args), runtime=runtime_profile(), memory_bytes=spec.memory_bytes,
            output_bytes=spec.output_bytes, currency=spec.currency,
            price_per_tfuel_minor=spec.price_per_tfuel_minor, fee_bps=fee_bps,
            replication=spec.replication, max_results=2 * spec.replication + 2,
            unit_seconds=spec.unit_seconds, deadline=deadline, unit_count=len(spec.units),
            budget_minor=budget, presentation=dict(spec.presentation),
        )
        escrow = account_get_or_create(kind=AccountKind.ESCROW, owner=customer,
                                       currency=spec.currency, reference=job.escrow_reference)
        if budget:
            ledger_post(kind=EntryKind.COMPUTE_HOLD, reference=str(job.id),
                        memo=f"{job.name[:120]}: budget into escrow",
                        legs=[Leg(wallet, -budget), Leg(escrow, budget)], fresh_reference=True)
        WorkUnit.objects.bulk_create(
            [WorkUnit(job=job, seq=seq, label=unit.label[:100], input=unit.input,
                      fuel_cap=unit.fuel, quorum=spec.replication, open_slots=spec.replication)
             for seq, unit in enumerate(spec.units)],
            batch_size=1000,
        )
        audit_record(actor=customer, action="compute.job_submit", target=job,
                     data={"units": len(spec.units), "budget_minor": budget,
                           "currency": spec.currency, "module": module.sha256,
                           "display": format_minor(budget, spec.currency)})
    return job
