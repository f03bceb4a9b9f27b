"""Drill 3: PostgreSQL is restarted (an immediate shutdown: every server process killed,
the WAL replayed on start) while buyers' purchases are in flight. Each client sees its
purchase succeed or a clear 503 with the API's error body, retries with the same
Idempotency-Key, and in the end every purchase a client saw succeed exists exactly
once, with its escrow entry and licence; nothing half done, no 500.

One buyer's wallet row is held by the drill when the server goes down, so some of the
purchases are inside their transactions (key claimed, wallet not yet debited) at that
moment, not merely queued.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from licensing.core import DeviceKeys
from tests.e2e.test_sale import _register
from tests.support.drills import Drill, HeldLock
from tests.support.processes import wait_until

pytestmark = [pytest.mark.drill, pytest.mark.e2e, pytest.mark.slow]

PRICE = 10
BUYERS = ("bob", "carol")


class Buyers:
    """Clients that keep buying, each purchase with its own key, retried until it has a
    final answer, the way a careful client (the agent) does."""

    def __init__(self, drill: Drill, work_id: str) -> None:
        self.drill = drill
        self.work_id = work_id
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.bought: dict[str, str] = {}  # key -> purchase id, as the client saw it
        self.statuses: Counter[int] = Counter()
        self.transport_errors: list[str] = []
        self.unexpected: list[str] = []
        self.threads: list[threading.Thread] = []

    def start(self, username: str, device: str) -> None:
        thread = threading.Thread(target=self._run, args=(username, device), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _run(self, username: str, device: str) -> None:
        with self.drill.site.api(username) as client:
            while not self.stop.is_set():
                self._buy_once(client, device)

    def _buy_once(self, client: httpx.Client, device: str) -> None:
        key = f"drill-{uuid.uuid4()}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                response = client.post("/api/v1/purchases/", headers={"Idempotency-Key": key},
                                       json={"work": self.work_id, "device": device})
            except httpx.TransportError as exc:
                with self.lock:
                    self.transport_errors.append(repr(exc))
                time.sleep(0.2)
                continue
            with self.lock:
                self.statuses[response.status_code] += 1
            if response.status_code == 201:
                with self.lock:
                    self.bought[key] = response.json()["purchase"]["id"]
                return
            error = response.json().get("error", {}) if _is_json(response) else {}
            if (response.status_code, error.get("code")) in (
                    (503, "service_unavailable"), (409, "idempotency_in_flight")):
                time.sleep(0.2)
                continue
            with self.lock:
                self.unexpected.append(f"{response.status_code} {response.text[:300]}")
            return
        with self.lock:
            self.unexpected.append(f"no final answer for {key} in 120 s")

    def wait_for(self, count: int) -> None:
        start = len(self.bought)
        wait_until(lambda: len(self.bought) >= start + count, timeout=120,
                   what=f"{count} more purchases", log=self.drill.site.logs / "server.log")

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=180)
        assert not any(thread.is_alive() for thread in self.threads)


def _is_json(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json")


def _device(drill: Drill, username: str) -> str:
    public = DeviceKeys.generate().public.to_b64url()
    with drill.site.api(username) as client:
        response = client.post("/api/v1/devices/", json={
            "name": "drill", "signing_key": public["sig"], "kem_key": public["kem"]})
        assert response.status_code == 201, response.text
        return str(response.json()["device_id"])


def test_purchases_in_flight_across_a_database_restart_happen_once_or_not_at_all(
    drill: Drill, tmp_path: Path
) -> None:
    site, postgres = drill.site, drill.postgres
    work = _register(site, "Drill: database restart", width=160, height=120, price_minor=PRICE)
    buyers = Buyers(drill, str(work["id"]))
    for username in BUYERS:
        device = _device(drill, username)
        for _ in range(2):
            buyers.start(username, device)
    try:
        buyers.wait_for(4)
        [(wallet,)] = postgres.sql(
            "SELECT a.id FROM ledger_account a JOIN accounts_user u ON u.id = a.owner_id "
            "WHERE u.username = 'carol' AND a.kind = 'wallet' AND a.currency = 'EUR'")
        held = HeldLock(postgres, "SELECT 1 FROM ledger_account WHERE id = %s FOR UPDATE", wallet)
        wait_until(lambda: bool(drill.waiting("%ledger_account%")), timeout=60,
                   what="a purchase to wait inside its transaction")
        postgres.restart(mode="immediate")
        with contextlib.suppress(psycopg.Error):
            held.release()  # its session died with the server
        buyers.wait_for(8)
    finally:
        buyers.finish()

    assert buyers.unexpected == []
    assert buyers.statuses[500] == 0
    assert buyers.statuses[503] > 0  # the outage was seen, and said so clearly
    rows = postgres.sql(
        "SELECT p.id, p.licence_id FROM purchases_purchase p WHERE p.work_id = %s", work["id"])
    in_database = {str(pk) for pk, _licence in rows}
    seen = list(buyers.bought.values())
    assert len(seen) == len(set(seen))  # no key bought twice
    assert set(seen) == in_database  # every purchase seen exists, and no other
    assert all(licence is not None for _pk, licence in rows)
    claims = postgres.sql("SELECT key, state FROM api_idempotencyrecord WHERE key LIKE 'drill-%%'")
    assert {key for key, _state in claims} == set(buyers.bought)
    assert {state for _key, state in claims} == {"done"}
    drill.assert_books_balance()
