"""Deciding a unit from the results its devices returned: BOINC's quorum, as a pure
function so that every rule is tested without a database.

Results agree when everything a device signs about the outcome is identical: output
hash and size, how it stopped, the exit status, the fuel and the runtime profile. A
result stopped by the device's own limits (its wall clock, a failed worker) is not a
vote: it says nothing about the unit, only that this device did not finish it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

Agreement = tuple[str, int, str, int | None, int, str]
# Stops that depend on the machine, never on the unit: not votes.
NO_VOTE_STOPS = frozenset({"wall-clock", "worker-failed"})


@dataclass(frozen=True)
class Returned:
    """A returned result: the assignment it answers and what it says."""

    assignment: int
    agreement: Agreement

    @property
    def votes(self) -> bool:
        return self.agreement[2] not in NO_VOTE_STOPS


class Outcome(Enum):
    VALIDATED = "validated"
    WAIT = "wait"  # enough assignments are out to reach the quorum
    FAILED = "failed"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    open_slots: int = 0
    agreed: Agreement | None = None
    agreeing: tuple[int, ...] = ()
    disagreeing: tuple[int, ...] = ()
    no_vote: tuple[int, ...] = field(default=())


def decide(*, quorum: int, returned: Sequence[Returned], outstanding: int, issued: int,
           max_results: int) -> Decision:
    """What to do with a unit now.

    ``returned`` in the order they arrived; ``outstanding`` assignments are still out;
    ``issued`` counts every assignment ever made for the unit (expired ones too), which
    ``max_results`` bounds. The first agreement to reach ``quorum`` wins; every other
    voting result disagreed with it. Without a quorum, enough new assignments are
    opened that the largest group could still reach it, if the bound allows; once
    no quorum is reachable within the bound, the unit has failed (outstanding
    assignments are then of no use).
    """
    groups: dict[Agreement, list[int]] = {}
    no_vote = tuple(r.assignment for r in returned if not r.votes)
    for result in returned:
        if not result.votes:
            continue
        members = groups.setdefault(result.agreement, [])
        members.append(result.assignment)
        if len(members) >= quorum:
            agreeing = tuple(members)
            disagreeing = tuple(r.assignment for r in returned
                                if r.votes and r.agreement != result.agreement)
            return Decision(Outcome.VALIDATED, agreed=result.agreement, agreeing=agreeing,
                            disagreeing=disagreeing, no_vote=no_vote)
    largest = max((len(m) for m in groups.values()), default=0)
    missing = quorum - largest - outstanding
    room = max(0, max_results - issued)
    if missing <= 0:
        return Decision(Outcome.WAIT)
    if missing > room:  # even every assignment still allowed could not make a quorum
        return Decision(Outcome.FAILED, no_vote=no_vote)
    return Decision(Outcome.WAIT, open_slots=min(missing, room))
