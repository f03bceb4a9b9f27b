"""Drill 4: the gunicorn worker serving a purchase is killed (SIGKILL; the master lives
and starts another) in the middle of the request; the buyer's agent retries with the
same Idempotency-Key and gets exactly one purchase, charged once.

The drill holds the buyer's wallet row, so the purchase waits inside its transaction
(its key claimed, the wallet debit not yet made) where the worker is killed. Until the
dead worker's transaction is rolled back a retry is told the request is still in
flight; then the retry takes the abandoned key over and buys, once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.test_sale import _register
from tests.support.agents import AgentProcess
from tests.support.drills import Drill, HeldLock
from tests.support.processes import wait_until
from tests.support.services import children, pid_of_local_port

pytestmark = [pytest.mark.drill, pytest.mark.e2e, pytest.mark.slow]

PRICE = 700

WALLET = ("SELECT a.id, a.balance FROM ledger_account a JOIN accounts_user u ON u.id = a.owner_id "
          "WHERE u.username = %s AND a.kind = 'wallet' AND a.currency = 'EUR'")


def test_a_worker_killed_mid_purchase_then_a_retry_with_the_same_key_buys_once(
    drill: Drill, tmp_path: Path
) -> None:
    site, postgres = drill.site, drill.postgres
    work = _register(site, "Drill: killed web worker", width=200, height=150, price_minor=PRICE)
    buyer = AgentProcess(tmp_path, "buyer", site.url)
    buyer.setup("carol", site.logins["carol"])
    [(wallet, balance)] = postgres.sql(WALLET, "carol")
    master = site.processes["server"].pid

    hold_wallet = "SELECT 1 FROM ledger_account WHERE id = %s FOR UPDATE"
    with HeldLock(postgres, hold_wallet, wallet) as lock:
        first = buyer.start("buy", str(work["id"]), stderr=True)
        wait_until(lambda: bool(drill.waiting("%ledger_account%")), timeout=60,
                   what="the purchase to wait for the wallet", log=site.logs / "server.log")
        [waiter] = drill.waiting("%ledger_account%")
        worker = pid_of_local_port(waiter["client_port"])
        assert worker in children(master), "the request is served by one of gunicorn's workers"
        os.kill(worker, signal.SIGKILL)
        _, error = first.communicate(timeout=60)
        assert first.returncode == 1
        lines = error.decode().strip().splitlines()
        assert len(lines) == 1, lines  # one clear line, no traceback
        assert lines[0].startswith("error: cannot reach the platform"), lines
        wait_until(lambda: len(children(master)) == 2 and worker not in children(master),
                   timeout=60, what="gunicorn to replace the worker", log=site.logs / "server.log")
        assert site.processes["server"].poll() is None  # the master lived on

        # The dead worker's transaction still holds the key (it waits for the wallet too).
        busy = buyer.run("buy", str(work["id"]), check=False)
        assert busy.returncode == 1
        assert "still being processed" in busy.stderr
        assert "[idempotency_in_flight]" in busy.stderr
        lock.release()

    # The dead worker's transaction is rolled back; the same key now buys, once.
    outcomes: list[object] = []

    def bought() -> bool:
        result = buyer.run("buy", str(work["id"]), check=False)
        outcomes.append(result)
        return isinstance(result, dict)

    wait_until(bought, timeout=60, interval=1, what="the retry to buy")
    assert all(getattr(o, "returncode", 0) == 1 and "idempotency_in_flight" in o.stderr
               for o in outcomes[:-1]), outcomes
    purchases = postgres.sql(
        "SELECT p.id, p.licence_id FROM purchases_purchase p JOIN accounts_user u "
        "ON u.id = p.buyer_id WHERE u.username = 'carol' AND p.work_id = %s", work["id"])
    assert len(purchases) == 1
    assert str(purchases[0][1]) == outcomes[-1]["licence_id"]  # type: ignore[index]
    assert postgres.sql(WALLET, "carol") == [(wallet, balance - PRICE)]
    entries = postgres.sql("SELECT count(*) FROM ledger_journalentry WHERE kind = 'purchase' "
                           "AND reference = %s", str(purchases[0][0]))
    assert entries == [(1,)]
    drill.assert_books_balance()
