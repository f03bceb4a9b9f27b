"""The quorum rule, case by case (BOINC's validator, done as a pure function)."""

from __future__ import annotations

from exchange.compute_market.quorum import Outcome, Returned, decide

GOOD = ("aa" * 32, 10, "exit", 0, 500, "rt")
BAD = ("bb" * 32, 10, "exit", 0, 500, "rt")
MORE_FUEL = ("aa" * 32, 10, "exit", 0, 501, "rt")
TIMED_OUT = ("", 0, "wall-clock", None, 0, "rt")


def test_two_agreeing_results_validate() -> None:
    d = decide(quorum=2, returned=[Returned(1, GOOD), Returned(2, GOOD)], outstanding=0,
               issued=2, max_results=6)
    assert (d.outcome, d.agreed, d.agreeing, d.disagreeing) == (
        Outcome.VALIDATED, GOOD, (1, 2), ())


def test_a_disagreement_asks_for_one_more_result() -> None:
    d = decide(quorum=2, returned=[Returned(1, GOOD), Returned(2, BAD)], outstanding=0,
               issued=2, max_results=6)
    assert (d.outcome, d.open_slots) == (Outcome.WAIT, 1)
    d = decide(quorum=2, returned=[Returned(1, GOOD), Returned(2, BAD), Returned(3, GOOD)],
               outstanding=0, issued=3, max_results=6)
    assert (d.outcome, d.agreeing, d.disagreeing) == (Outcome.VALIDATED, (1, 3), (2,))


def test_a_different_fuel_count_is_a_disagreement() -> None:
    d = decide(quorum=2, returned=[Returned(1, GOOD), Returned(2, MORE_FUEL)], outstanding=0,
               issued=2, max_results=6)
    assert d.outcome is Outcome.WAIT


def test_results_out_are_waited_for_before_issuing_more() -> None:
    d = decide(quorum=2, returned=[Returned(1, GOOD)], outstanding=1, issued=2, max_results=6)
    assert (d.outcome, d.open_slots) == (Outcome.WAIT, 0)


def test_a_device_stopped_by_its_own_clock_is_no_vote() -> None:
    d = decide(quorum=2, returned=[Returned(1, TIMED_OUT), Returned(2, GOOD)], outstanding=0,
               issued=2, max_results=6)
    assert (d.outcome, d.open_slots) == (Outcome.WAIT, 1)
    d = decide(quorum=2, returned=[Returned(1, TIMED_OUT), Returned(2, GOOD),
                                   Returned(3, GOOD)], outstanding=0, issued=3, max_results=6)
    assert (d.outcome, d.no_vote, d.disagreeing) == (Outcome.VALIDATED, (1,), ())


def test_the_unit_fails_when_no_quorum_is_reachable_within_the_bound() -> None:
    returned = [Returned(i, (f"{i:02x}" * 32, 1, "exit", 0, 1, "rt")) for i in range(5)]
    d = decide(quorum=2, returned=returned, outstanding=0, issued=5, max_results=6)
    assert (d.outcome, d.open_slots) == (Outcome.WAIT, 1)
    returned.append(Returned(5, ("ff" * 32, 1, "exit", 0, 1, "rt")))
    d = decide(quorum=2, returned=returned, outstanding=0, issued=6, max_results=6)
    assert d.outcome is Outcome.FAILED


def test_a_fresh_unit_waits_for_its_assignments() -> None:
    d = decide(quorum=3, returned=[], outstanding=0, issued=0, max_results=8)
    assert (d.outcome, d.open_slots) == (Outcome.WAIT, 3)
