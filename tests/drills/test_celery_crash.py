"""Drill 1: the Celery worker is killed (SIGKILL) in the middle of a metering flush, and
then the worker and beat are killed in the middle of a settlement; both come back and
every order and the settlement are recorded exactly once.

The drill holds database locks of its own to stop the worker at the statement it wants
it killed in: first the insert of the flushed orders (the orders are read from the
Redis stream, not yet acknowledged), then the settlement's lock of the purchase (the
orders are recorded, the escrow not yet released).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.test_sale import _register, _seed
from tests.support.agents import AgentProcess
from tests.support.drills import Drill, HeldLock, outbox
from tests.support.processes import wait_until

pytestmark = [pytest.mark.drill, pytest.mark.e2e, pytest.mark.slow]

PRICE = 1000


def test_a_worker_killed_mid_flush_and_beat_killed_mid_settlement_lose_and_repeat_nothing(
    drill: Drill, tmp_path: Path
) -> None:
    site, postgres = drill.site, drill.postgres
    work = _register(site, "Drill: killed worker", width=800, height=600, price_minor=PRICE)
    count = -(-httpx.get(f"{site.url}/api/v1/works/{work['id']}/").json()["size_bytes"]
              // (256 * 1024))
    seeders = {user: AgentProcess(tmp_path, f"seed-{user}", site.url) for user in ("carol", "rita")}
    for user, agent in seeders.items():
        agent.setup(user, site.logins[user])
    half = count // 2
    _seed(seeders["carol"], site, work["id"], set(range(half)))
    _seed(seeders["rita"], site, work["id"], set(range(half, count)))
    buyer = AgentProcess(tmp_path, "buyer", site.url)
    buyer.setup("bob", site.logins["bob"])

    # Every flush now stops at its insert of the orders, inside its transaction.
    flush_stopper = HeldLock(postgres, "LOCK TABLE metering_meteredorder IN EXCLUSIVE MODE")
    with flush_stopper, seeders["carol"].serving(), seeders["rita"].serving():
        result = buyer.run("get", work["id"])
        assert result["receipt"] == "sent"
        licence = result["licence_id"]

        def submitted() -> bool:
            return all(outbox(agent)[1] == 0 and outbox(agent)[0] for agent in seeders.values())

        wait_until(submitted, timeout=60, what="the serving agents to submit their orders")
        wait_until(lambda: bool(drill.waiting("%metering_meteredorder%")), timeout=60,
                   what="the worker to be inside a flush", log=site.logs / "worker.log")
        site.kill("worker")
        assert drill.pending_in_stream() > 0  # read by the dead worker, never acknowledged
        with site.api("bob") as bob:
            purchase = bob.get("/api/v1/purchases/").json()["results"][0]
        assert purchase["licence"] == licence

        # Next, the settlement stops at its lock of the purchase, after its flush.
        settle_stopper = HeldLock(
            postgres, "SELECT 1 FROM purchases_purchase WHERE id = %s FOR UPDATE", purchase["id"])
        with settle_stopper:
            flush_stopper.release()
            site.restart("worker")
            wait_until(lambda: bool(drill.waiting("%purchases_purchase%")), timeout=120,
                       what="the worker to be inside the settlement", log=site.logs / "worker.log")
            site.kill("worker")
            site.kill("beat")
        site.restart("beat")
        site.restart("worker")

        with site.api("bob") as bob:
            wait_until(lambda: bob.get(f"/api/v1/purchases/{purchase['id']}/").json()["state"]
                       == "settled", timeout=120, what="the settlement to complete",
                       log=site.logs / "worker.log")

    # Every order a serving agent accepted is recorded, once; the stream is drained.
    accepted = {nonce for agent in seeders.values() for lic, nonce in outbox(agent)[0]
                if lic == licence}
    recorded = drill.metered(licence)
    assert set(recorded) == accepted
    assert set(recorded.values()) == {1}
    assert drill.pending_in_stream() == 0
    # Settled once, on all of them: the receipt agrees with the orders.
    review = drill.postgres.sql(
        "SELECT needs_review, review_reason FROM metering_receipt WHERE licence_id = %s", licence)
    assert review == [(False, "")]
    entries = drill.postgres.sql(
        "SELECT count(*) FROM ledger_journalentry WHERE kind = 'settlement' AND reference = %s",
        purchase["id"])
    assert entries == [(1,)]
    drill.assert_books_balance()
