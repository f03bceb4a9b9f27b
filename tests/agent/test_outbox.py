"""The order outbox: each accepted order once, durable, until the platform has it."""

from __future__ import annotations

from pathlib import Path

from agent.outbox import OrderOutbox
from licensing.core import Order


def order(nonce: str, *, licence: str = "licence-bob-1", piece: int = 0) -> Order:
    return Order(
        licence_id=licence,
        peer_id="peer-1",
        piece=piece,
        byte_count=1000 + piece,
        nonce=nonce,
        issued_at=1_900_000_000,
        device_id="device-bob",
    )


def test_an_order_is_recorded_once_per_licence_and_nonce(tmp_path: Path) -> None:
    outbox = OrderOutbox(tmp_path / "outbox.sqlite3", clock=lambda: 1_900_000_000)

    assert outbox.append("token-a", order("n1"), work_id="w") is True
    assert outbox.append("token-a-again", order("n1"), work_id="w") is False
    assert outbox.append("token-b", order("n1", licence="licence-carol-1"), work_id="w") is True
    assert outbox.append("token-c", order("n2", piece=3), work_id="w") is True

    pending = outbox.pending(10)
    assert [p.token for p in pending] == ["token-a", "token-b", "token-c"]
    assert pending[2].piece == 3
    assert pending[2].byte_count == 1003
    assert outbox.served_bytes() == {"licence-bob-1": 2003, "licence-carol-1": 1000}


def test_sent_orders_leave_the_queue_and_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    outbox = OrderOutbox(path)
    for n in range(5):
        outbox.append(f"token-{n}", order(f"n{n}", piece=n), work_id="w")
    first = outbox.pending(2)

    assert outbox.mark_sent(p.id for p in first) == 2
    assert outbox.mark_sent(p.id for p in first) == 0  # already sent
    outbox.close()

    reopened = OrderOutbox(path)
    assert reopened.count_pending() == 3
    assert [p.token for p in reopened.pending(10)] == ["token-2", "token-3", "token-4"]
    assert reopened.append("token-0", order("n0", piece=0), work_id="w") is False
    reopened.close()
