"""Drill 2: Redis (the metering stream, the Celery broker, the cache) is killed with
SIGKILL and started again from its append-only file while serving agents and a client
submit orders. The API answers a clear 503 while Redis is down and the submitters retry;
every order it accepted (a 2xx) ends in the database exactly once, and the sale made
during the outage settles.

Redis runs as production must run it for the stream: ``appendonly yes`` with
``appendfsync always`` (docs/OPERATIONS.md): a reply to a write is sent only once the
write is in the append-only file.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from licensing.core import DeviceKeys, KeyRing, read_manifest, sign_order
from tests.e2e.test_sale import _register, _seed
from tests.support.agents import AgentProcess
from tests.support.drills import Drill, outbox
from tests.support.platform import Platform
from tests.support.processes import wait_until

pytestmark = [pytest.mark.drill, pytest.mark.e2e, pytest.mark.slow]

PRICE = 300
BATCH = 4


class OrderClient:
    """A serving peer's client that submits batches of signed orders and retries each
    batch (the same tokens) until the platform answers it with a 2xx."""

    def __init__(self, site_url: str, token: str, sign: object, pieces: list[int]) -> None:
        self.http = httpx.Client(base_url=site_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        self.sign = sign
        self.pieces = pieces
        self.stop = threading.Event()
        self.accepted: Counter[str] = Counter()  # nonce -> answers "accepted"/"duplicate"
        self.statuses: Counter[int] = Counter()
        self.bad: list[str] = []
        self.batches = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from licensing.core.jws import parse_document
        from licensing.core.kinds import DocumentKind

        while not self.stop.is_set():
            tokens = [self.sign(self.pieces[(self.batches * BATCH + i) % len(self.pieces)])
                      for i in range(BATCH)]
            nonces = [parse_document(t, DocumentKind.ORDER).claims["nonce"] for t in tokens]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    response = self.http.post("/api/v1/metering/orders/",
                                              json={"orders": tokens})
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    for nonce, result in zip(nonces, response.json()["results"], strict=True):
                        if result["status"] == "rejected":
                            self.bad.append(f"rejected: {result['reason']}")
                        else:
                            self.accepted[nonce] += 1
                    break
                body = response.json() if response.headers.get(
                    "content-type", "").startswith("application/json") else {}
                if response.status_code != 503 or body.get("error", {}).get(
                        "code") != "service_unavailable":
                    self.bad.append(f"{response.status_code} {response.text[:300]}")
                    return
                time.sleep(0.2)
            else:
                self.bad.append("a batch was never answered")
                return
            self.batches += 1
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(timeout=180)
        assert not self.thread.is_alive()
        self.http.close()


def test_orders_accepted_across_a_redis_restart_are_all_recorded_once(
    drill: Drill, tmp_path: Path
) -> None:
    site, redis = drill.site, drill.redis
    work = _register(site, "Drill: Redis restart", width=800, height=600, price_minor=PRICE)
    seeders = {user: AgentProcess(tmp_path, f"seed-{user}", site.url) for user in ("carol", "rita")}
    devices = {user: agent.setup(user, site.logins[user]) for user, agent in seeders.items()}
    manifest_token = httpx.get(f"{site.url}/api/v1/works/{work['id']}/manifest/",
                               headers={"Authorization": f"Bearer {_token(site, 'rita')}"}
                               ).json()["token"]
    ring = KeyRing.from_jwks(httpx.get(f"{site.url}/.well-known/jwks.json").content)
    manifest = read_manifest(manifest_token, keyring=ring, now=int(time.time()))
    count = manifest.piece_count
    _seed(seeders["carol"], site, work["id"], set(range(count // 2)))
    _seed(seeders["rita"], site, work["id"], set(range(count // 2, count)))
    buyer = AgentProcess(tmp_path, "buyer", site.url)
    buyer.setup("bob", site.logins["bob"])

    # The client's orders are for a licence of their own: a device of Carol's, which
    # "downloads" from Rita's serving device. (Not one of Bob's: Bob's agent below would
    # then have its licence re-issued from it, as one library on every device does,
    # instead of buying during the outage.)
    keys = DeviceKeys.generate()
    public = keys.public.to_b64url()
    with site.api("carol") as carol:
        device = carol.post("/api/v1/devices/", json={
            "name": "drill", "signing_key": public["sig"], "kem_key": public["kem"]}).json()
        bought = carol.post("/api/v1/purchases/", headers={"Idempotency-Key": "drill-2-orders"},
                            json={"work": work["id"], "device": device["device_id"]})
        assert bought.status_code == 201, bought.text
        client_licence = bought.json()["licence"]["id"]

    def sign(piece: int) -> str:
        return sign_order(keys, licence_id=client_licence, peer_id=devices["rita"],
                          piece=piece, byte_count=manifest.piece_length(piece),
                          issued_at=int(time.time()))

    client = OrderClient(site.url, _token(site, "rita"), sign, list(range(count)))
    with seeders["carol"].serving(), seeders["rita"].serving():
        client.thread.start()
        try:
            wait_until(lambda: client.batches >= 3, timeout=60, what="orders before the outage")
            # While Redis is away the platform answers from the live index's durable record,
            # which the flush writes every 2 s: the seeders must be in it before the outage.
            wait_until(lambda: drill.postgres.sql(
                "SELECT count(*) FROM peers_holding WHERE work_id = %s", work["id"])[0][0] == 2,
                timeout=60, what="the seeders in the durable record", log=site.logs / "worker.log")
            redis.kill()
            # During the outage: the buyer buys and downloads from the agents; its
            # receipt is kept; the agents' orders and the client's wait and retry.
            result = buyer.run("get", work["id"])
            assert result["receipt"] == "sent"
            wait_until(lambda: client.statuses[503] > 0, timeout=60,
                       what="the client to be told the service is unavailable")
            assert any(outbox(agent)[1] for agent in seeders.values())  # still to submit
            before = client.batches
            redis.start()
            wait_until(lambda: client.batches >= before + 3, timeout=120,
                       what="orders after the restart", log=site.logs / "server.log")
        finally:
            client.finish()
        wait_until(lambda: all(outbox(agent)[1] == 0 for agent in seeders.values()),
                   timeout=120, what="the agents to submit their orders")
        licence = result["licence_id"]
        with site.api("bob") as bob:
            purchase = next(p for p in bob.get("/api/v1/purchases/").json()["results"]
                            if p["licence"] == licence)
            wait_until(lambda: bob.get(f"/api/v1/purchases/{purchase['id']}/").json()["state"]
                       == "settled", timeout=120, what="the sale to settle",
                       log=site.logs / "worker.log")

    assert client.bad == []
    assert client.statuses[500] == 0
    # Every order the API accepted is recorded, once; so is every order an agent sent.
    wait_until(lambda: drill.pending_in_stream() == 0 and set(drill.metered(client_licence))
               == set(client.accepted), timeout=60, what="the client's orders to be flushed")
    recorded = drill.metered(client_licence)
    assert set(recorded.values()) == {1}
    sent_by_agents = {nonce for agent in seeders.values() for lic, nonce in outbox(agent)[0]
                      if lic == licence}
    recorded = drill.metered(licence)
    assert set(recorded) == sent_by_agents
    assert set(recorded.values()) == {1}
    drill.assert_books_balance()


def _token(site: Platform, username: str) -> str:
    site.api(username).close()  # logs in once; the token is kept
    return site.tokens[username]
