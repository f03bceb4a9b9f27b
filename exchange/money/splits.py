"""Dividing an amount of minor units by weights without losing or creating a unit.

Largest-remainder (Hamilton) apportionment: everyone gets the floor of their exact
share, and the units left over go one each to the largest fractional remainders, ties
broken by position. The result is deterministic, sums exactly to the amount, and no part
is more than one unit away from its exact share.
"""

from __future__ import annotations

from collections.abc import Sequence


def apportion(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` (>= 0) in proportion to non-negative integer ``weights``."""
    if amount < 0:
        raise ValueError("amount must not be negative")
    if not weights:
        raise ValueError("at least one weight is needed")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    total = sum(weights)
    if total == 0:
        raise ValueError("weights must not all be zero")
    floors = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    left = amount - sum(floors)
    # Largest remainder first; on a tie, the earlier position wins (stable and documented).
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for index in order[:left]:
        floors[index] += 1
    return floors


class SaleSplit:
    """A settled amount divided into royalty, platform fee and per-peer seeding credit."""

    __slots__ = ("fee", "peers", "royalty")

    def __init__(self, royalty: int, fee: int, peers: dict[int, int]) -> None:
        self.royalty = royalty
        self.fee = fee
        self.peers = peers

    @property
    def seeding(self) -> int:
        return sum(self.peers.values())

    def __repr__(self) -> str:
        return f"SaleSplit(royalty={self.royalty}, fee={self.fee}, peers={self.peers})"


def sale_split(
    amount: int, *, fee_bps: int, seeding_bps: int, peer_bytes: dict[int, int], size: int
) -> SaleSplit:
    """Divide ``amount``: the fee is ``fee_bps`` of it; the seeding pool ``seeding_bps``,
    shared by serving peers in proportion to the verified bytes each served, out of the
    larger of the work's size and the bytes served in all (so the share for bytes no
    peer was paid for, a web seed's say, goes to the rights holder); the rest is royalty.

    One largest-remainder apportionment over all parts at once, so the parts sum to
    ``amount`` exactly. Peers are ordered by id, for determinism.
    """
    if not (0 <= fee_bps <= 10_000 and 0 <= seeding_bps <= 10_000 - fee_bps):
        raise ValueError("rates must be basis points that sum to at most 10,000")
    if size <= 0:
        raise ValueError("size must be positive")
    if any(b < 0 for b in peer_bytes.values()):
        raise ValueError("bytes served must not be negative")
    served = sum(peer_bytes.values())
    whole = max(served, size)
    royalty_bps = 10_000 - fee_bps - seeding_bps
    peers = sorted(peer_bytes)
    weights = [
        royalty_bps * whole + seeding_bps * (whole - served),
        fee_bps * whole,
        *(seeding_bps * peer_bytes[peer] for peer in peers),
    ]
    parts = apportion(amount, weights)
    return SaleSplit(royalty=parts[0], fee=parts[1], peers=dict(zip(peers, parts[2:], strict=True)))
