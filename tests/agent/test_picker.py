"""The downloader's piece policy, driven step by step without any I/O.

Expected picks are worked out by hand from the rules in agent/picker.py: rarest first,
ties broken by the noise (here: each piece's position, so lower indices first), the
least loaded ready source chooses first, and the endgame duplicates the oldest request.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from agent.picker import BannedPiece, DroppedSource, Pick, PiecePicker, SourceState
from licensing.core.bitfield import bitfield_from_indices


def in_order(n: int) -> bytes:
    """Tie-break noise that ranks equally rare pieces by their position."""
    return b"".join(i.to_bytes(4, "big") for i in range(n // 4))


def make(
    holdings: dict[str, Iterable[int]],
    *,
    missing: Iterable[int] = range(6),
    max_connections: int = 8,
    per_source: int = 4,
    copies: int = 3,
    pieces: int = 6,
) -> PiecePicker:
    return PiecePicker(
        missing=list(missing),
        sources=[(key, bitfield_from_indices(held, pieces)) for key, held in holdings.items()],
        max_connections=max_connections,
        connections_per_source=per_source,
        endgame_copies=copies,
        random=in_order,
    )


def source(picker: PiecePicker, key: str) -> SourceState:
    [found] = [s for s in picker.sources if s.key == key]
    return found


def picks(picker: PiecePicker, *times: float) -> list[tuple[str, int, bool] | None]:
    out: list[tuple[str, int, bool] | None] = []
    for now in times:
        pick = picker.pick(now)
        out.append(None if pick is None else (pick.source.key, pick.index, pick.endgame))
    return out


def finish(picker: PiecePicker, pick: Pick, *, good: bool = True) -> None:
    """The request's body came in and verified (or failed its hash)."""
    picker.answered(pick.source)
    if good:
        picker.verified(pick.source, pick.index)
    else:
        picker.bad_piece(pick.source, pick.index, "hash mismatch")
    picker.release(pick.source, pick.index)


def test_rarest_first_then_the_endgame_duplicates_the_oldest_request() -> None:
    # B lacks 4 and 5, so those are the rarest: A takes them first.
    picker = make({"A": range(6), "B": range(4)})
    assert picks(picker, 1, 2, 3, 4, 5, 6) == [
        ("A", 4, False),
        ("B", 0, False),  # B is less loaded now, and chooses next
        ("A", 5, False),
        ("B", 1, False),
        ("A", 2, False),
        ("B", 3, False),
    ]
    # All six in flight: the oldest request another source can duplicate is B's piece 0
    # (A's 4, older, is held by A alone).
    assert picks(picker, 7) == [("A", 0, True)]
    # A is at its 4 connections; B duplicates the oldest it holds and does not fetch: 2.
    assert picks(picker, 8) == [("B", 2, True)]
    assert picks(picker, 9) == [None]  # both at their cap


def test_a_verified_piece_names_the_duplicates_to_cancel() -> None:
    picker = make({"A": range(6), "B": range(4)})
    picks(picker, 1, 2, 3, 4, 5, 6, 7)  # ... and A duplicates B's piece 0
    b = source(picker, "B")
    a = source(picker, "A")
    assert picker.verified(b, 0) == [a]
    assert 0 not in picker.remaining
    assert not picker.checking(0)  # a late body for it is not wanted


def test_the_endgame_stops_at_the_copy_limit_and_skips_pieces_being_checked() -> None:
    picker = make({"A": [0], "B": [0], "C": [0]}, missing=[0], copies=2, pieces=1)
    assert picks(picker, 1, 2, 3) == [("A", 0, False), ("B", 0, True), None]
    picker = make({"A": [0], "B": [0]}, missing=[0], pieces=1)
    assert picks(picker, 1) == [("A", 0, False)]
    assert picker.checking(0)
    assert picks(picker, 2) == [None]  # its body is being verified: no duplicate


def test_each_source_takes_its_share_of_the_connections() -> None:
    one = make({"A": range(10)}, missing=range(10), pieces=10)
    assert [p and p[1] for p in picks(one, *range(5))] == [0, 1, 2, 3, None]  # capped at 4
    three = make({k: range(10) for k in "ABC"}, missing=range(10), pieces=10)
    got = picks(three, *range(10))
    # ceil(8 / 3) = 3 each, taken in turns by the least loaded
    assert got == [(k, i, False) for i, k in enumerate("ABC" * 3)] + [None]
    # With one source gone the share is ceil(8 / 2) = 4: A takes the last pending piece,
    # and B duplicates the oldest request (A's piece 0).
    three.drop(source(three, "C"), "gone")
    assert picks(three, 10, 11, 12) == [("A", 9, False), ("B", 0, True), None]


def test_a_bad_piece_is_banned_at_that_source_only() -> None:
    picker = make({"A": range(4), "B": range(4)}, missing=range(4), pieces=4)
    [first] = [picker.pick(1)]
    assert first is not None
    assert (first.source.key, first.index) == ("A", 0)
    finish(picker, first, good=False)
    a = source(picker, "A")
    assert not a.holds(0)
    assert a.holds(1)
    assert not a.dead
    assert picker.bans == [BannedPiece("A", 0, "hash mismatch")]
    assert picker.dropped == []
    # A goes on with its other pieces; the banned piece is retried first, at B.
    assert picks(picker, 2, 3) == [("A", 1, False), ("B", 0, False)]


def test_trust_drops_a_source_of_bad_pieces_after_four_but_not_a_mostly_good_one() -> None:
    bad = make({"A": range(10)}, missing=range(10), pieces=10)
    a = source(bad, "A")
    assert [bad.bad_piece(a, i, "hash mismatch") for i in range(4)] == [
        False, False, False, True  # trust -2, -4, -6, -8 (dropped at -7)
    ]
    assert bad.dropped == [DroppedSource("A", "4 bad pieces, the last 3: hash mismatch")]
    assert bad.pick(1) is None
    assert bad.orphans() == list(range(10))

    mostly = make({"A": range(20)}, missing=range(20), pieces=20)
    a = source(mostly, "A")
    for i in range(10):
        mostly.verified(a, i)  # trust rises to its cap of 8, not 10
    verdicts = [mostly.bad_piece(a, i, "hash mismatch") for i in range(10, 18)]
    assert verdicts == [False] * 7 + [True]  # 8 - 2 * 8 = -8


def test_pieces_every_source_sent_wrong_are_the_orphans() -> None:
    picker = make({"A": range(3), "B": range(3)}, missing=range(3), pieces=3)
    a, b = source(picker, "A"), source(picker, "B")
    for src in (a, b):
        picker.bad_piece(src, 1, "hash mismatch")
    assert picker.orphans() is None  # 0 and 2 are still to fetch
    while (pick := picker.pick(1)) is not None:
        finish(picker, pick)
    assert picker.remaining == {1}
    assert picker.orphans() == [1]
    assert picker.dropped == []


def test_not_held_forgets_the_piece_without_costing_trust() -> None:
    picker = make({"A": range(2), "B": range(2)}, missing=range(2), pieces=2)
    first = picker.pick(1)
    assert first is not None
    assert (first.source.key, first.index) == ("A", 0)
    picker.answered(first.source)
    picker.not_held(first.source, 0)
    picker.release(first.source, 0)
    assert first.source.trust == 0
    assert picker.bans == []
    assert picks(picker, 2, 3) == [("A", 1, False), ("B", 0, False)]


def test_a_dropped_sources_pieces_go_back_to_the_others() -> None:
    picker = make({"A": range(2), "B": [1]}, missing=range(2), pieces=2)
    assert picks(picker, 1) == [("A", 0, False)]  # 0 is rarest: only A holds it
    a = source(picker, "A")
    assert picker.drop(a, "stalled")
    assert not picker.drop(a, "again")  # once
    picker.answered(a)
    picker.release(a, 0)
    # Nobody else holds 0: it is set aside, B fetches 1, then 0 is the orphan.
    assert picks(picker, 2, 3) == [("B", 1, False), None]
    picker.answered(source(picker, "B"))
    picker.verified(source(picker, "B"), 1)
    picker.release(source(picker, "B"), 1)
    assert picker.orphans() == [0]
    assert picker.dropped == [DroppedSource("A", "stalled")]


def test_a_resting_source_is_not_asked_until_its_rest_ends() -> None:
    picker = make({"A": range(2)}, missing=range(2), pieces=2)
    picker.rest(source(picker, "A"), until=10.0)
    assert picker.pick(5) is None
    assert picker.rest_ends_in(5) == pytest.approx(5.0)
    assert picks(picker, 10) == [("A", 0, False)]
    assert picker.rest_ends_in(10) is None


def test_nothing_missing_is_done_at_once() -> None:
    picker = make({"A": range(2)}, missing=[], pieces=2)
    assert picker.done
    assert picker.pick(1) is None
    assert picker.orphans() is None


def test_it_refuses_a_download_without_connections() -> None:
    with pytest.raises(ValueError, match="at least one connection"):
        make({"A": [0]}, max_connections=0)
