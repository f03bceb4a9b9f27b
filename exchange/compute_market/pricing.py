"""What a job may cost, and how validated work is paid, exactly, in minor units.

**The price is per trillion fuel** (10^12 metered WebAssembly instructions; a minute
or two of one core), in minor units of the job's currency. A minor unit is far too
coarse a step for a million instructions (a cent per million would put an hour of one
core above €100,000), so the rate is set on the scale at which a unit of
money means something; per million fuel it is that price divided by 10^6, which the
arithmetic below keeps exactly.

**Accrual.** A validated unit that burned ``fuel`` earns each of the ``k`` devices
that agreed on it exactly ``fuel x price / 10^12`` minor units, and the platform its
fee on top, ``fee_bps / 10^4`` of that per device. A unit is usually worth a fraction
of a minor unit, so each party of a job (every paid member, and the platform) accrues
its exact value as an integer count of 10^-16 minor units (``SCALE``), and is paid
the whole minor units accrued as soon as they are (so earnings arrive with the
validations, never later than a minor unit's worth of work).

**The end of a job** pays the fractions: the customer is charged the floor of the
job's exact total, and the whole units left over after everyone's floors go, one each,
to the parties with the largest fractional remainders (the largest-remainder rule;
ties by party order). Every party ends with its exact value rounded down or up, the
parts sum to the charge exactly, and the customer never pays a fraction more than the
price.

**The budget** held in escrow is the ceiling of the exact value at every unit's fuel
cap on ``replication`` devices, plus the fee: nothing the job can owe exceeds it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

FUEL_PER_PRICE = 10**12  # the price is per trillion fuel
BPS = 10_000
SCALE = FUEL_PER_PRICE * BPS  # accruals count 10^-16 minor units

K = TypeVar("K", bound=Hashable)


def _check(fee_bps: int, price: int) -> None:
    if not 0 <= fee_bps <= BPS:
        raise ValueError("the fee is basis points from 0 to 10,000")
    if price < 1:
        raise ValueError("the price is at least one minor unit per trillion fuel")


def job_budget(*, fuel_caps: Iterable[int], replication: int, price_per_tfuel: int,
               fee_bps: int) -> int:
    """The most a job can cost: every unit at its cap on ``replication`` devices, plus fee."""
    _check(fee_bps, price_per_tfuel)
    if replication < 1:
        raise ValueError("replication is at least 1")
    numerator = sum(fuel_caps) * replication * price_per_tfuel * (BPS + fee_bps)
    return -(-numerator // SCALE)


def device_accrual(*, fuel: int, price_per_tfuel: int) -> int:
    """One agreeing device's exact earning for a unit, in 10^-16 minor units."""
    if fuel < 0:
        raise ValueError("fuel is not negative")
    return fuel * price_per_tfuel * BPS


def fee_accrual(*, fuel: int, devices: int, price_per_tfuel: int, fee_bps: int) -> int:
    """The platform's exact fee for a unit paid to ``devices`` devices, in 10^-16 units."""
    _check(fee_bps, price_per_tfuel)
    return devices * fuel * price_per_tfuel * fee_bps


@dataclass(frozen=True)
class Accrued:
    """A party's standing on one job: whole minor units paid, and the fraction accrued."""

    paid: int
    remainder: int  # 0 <= remainder < SCALE

    def add(self, value: int) -> tuple[Accrued, int]:
        """This standing after earning ``value`` (10^-16 units), and the minor units due now."""
        if value < 0:
            raise ValueError("an accrual is not negative")
        whole, remainder = divmod(self.remainder + value, SCALE)
        return Accrued(self.paid + whole, remainder), whole


def final_top_ups(parties: Mapping[K, Accrued], order: Iterable[K]) -> dict[K, int]:
    """The whole units left over at a job's end, by the largest fractional remainders.

    ``order`` ranks the parties for ties. The total paid becomes the floor of the exact
    total: every party its floor plus at most one unit.
    """
    ranked = list(order)
    if set(ranked) != set(parties):
        raise ValueError("order must name every party once")
    left = sum(p.remainder for p in parties.values()) // SCALE
    position = {key: index for index, key in enumerate(ranked)}
    by_remainder = sorted(ranked, key=lambda key: (-parties[key].remainder, position[key]))
    return {key: 1 for key in by_remainder[:left] if parties[key].remainder > 0}
