"""The simulated agents and buyers: coroutines on one asyncio loop in one process (not
228 processes), each with its own HTTP client and so its own connections, paced as the
real agent paces itself (agent/daemon.py).

- A peer agent comes online at a random moment of the first heartbeat interval and
  announces what it holds (``replace``: the daemon's start-up announce), then heartbeats
  every ``HEARTBEAT_SECONDS``; now and then it completes another work and announces that
  work (the daemon's rescan announces a change within ``RESCAN_SECONDS``; at loopback
  speed a download completes within one rescan).
- A serving agent holds every work, heartbeats likewise, and submits the orders buyers
  signed for the pieces it served every ``OUTBOX_SECONDS``, at most 500 a batch (the
  daemon's outbox flush); a batch the platform did not answer stays in its outbox.
- A buyer buys one work at a time, each a different one, at a steady pace: the work's
  page, the purchase (``Idempotency-Key``), the licence and manifest checked with the
  platform's keys, the sources, then one signed order per piece to the serving agents
  listed (round robin over at most ``DEFAULT_MAX_CONNECTIONS`` of them, as the
  downloader spreads its connections), then the signed receipt.

Every request is timed; a response that is neither 2xx nor an answer the real agent
expects (a heartbeat's ``409 not_announced``, which it answers by announcing) is an error,
and so is any transport failure or timeout.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.daemon import HEARTBEAT_SECONDS, OUTBOX_SECONDS
from agent.download import DEFAULT_MAX_CONNECTIONS
from agent.platform import TIMEOUT
from benchmarks.load.world import TLS_CONTEXT, Device, Work, World
from licensing.core import (
    DocumentKind,
    LicensingError,
    read_licence,
    read_manifest,
    sign_order,
    sign_receipt,
)
from licensing.core.bitfield import bitfield_encode, bitfield_from_indices, bitfield_full
from licensing.core.jws import parse_document

ORDER_BATCH = 500  # agent/daemon.py, Daemon.flush_outbox: outbox.pending(limit=500)

ANNOUNCE = "POST /peers/announce/"
HEARTBEAT = "POST /peers/heartbeat/"
WORK = "GET /works/{id}/"
PURCHASE = "POST /purchases/"
SOURCES = "GET /works/{id}/sources/"
ORDERS = "POST /metering/orders/"
RECEIPT = "POST /licences/{id}/receipt/"
ENDPOINTS = (HEARTBEAT, ANNOUNCE, WORK, PURCHASE, SOURCES, ORDERS, RECEIPT)


@dataclass
class Recorder:
    """Latency, status and errors of every request, per endpoint."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    expected: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    async def call(self, endpoint: str, client: httpx.AsyncClient, method: str, path: str,
                   *, expect: tuple[str, ...] = (), **kwargs: Any) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.latencies[endpoint].append(time.perf_counter() - started)
            self.errors[endpoint][f"transport: {type(exc).__name__}"] += 1
            return None
        self.latencies[endpoint].append(time.perf_counter() - started)
        if response.is_success:
            return response
        code = _error_code(response)
        if code in expect:
            self.expected[endpoint][f"{response.status_code} {code}"] += 1
        else:
            self.errors[endpoint][f"{response.status_code} {code}"] += 1
        return response

    def error(self, endpoint: str, what: str) -> None:
        """A 2xx answer that is still wrong (an order refused, a source missing)."""
        self.errors[endpoint][what] += 1


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "no error body"


@dataclass
class Metering:
    """What the serving agents' submissions came to, per order (licence id, nonce)."""

    accepted: set[tuple[str, str]] = field(default_factory=set)
    duplicate: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    signed: int = 0


@dataclass
class Outbox:
    """A serving agent's orders not yet answered by the platform."""

    pending: list[tuple[str, str, str]] = field(default_factory=list)  # token, licence, nonce


@dataclass
class Sales:
    purchases: int = 0
    receipts: int = 0


class Load:
    """One run's simulated population against one platform."""

    def __init__(self, url: str, world: World, *, seconds: float, buy_every: float,
                 acquire_every: float, rng: random.Random) -> None:
        self.url = url
        self.world = world
        self.seconds = seconds
        self.buy_every = buy_every
        self.acquire_every = acquire_every
        self.rng = rng
        self.recorder = Recorder()
        self.after = Recorder()  # the serving agents' last flush, once the window is over
        self.metering = Metering()
        self.sales = Sales()
        self.outboxes = {s.device_id: Outbox() for s in world.servers}
        self.start = self.deadline = 0.0
        self.lags: list[float] = []
        self.cpu_seconds = 0.0

    # --- plumbing ---------------------------------------------------------------------

    def _client(self, device: Device) -> httpx.AsyncClient:
        """Each agent its own client (its own connections), with the real agent's timeouts.
        One TLS context for all (unused on plain HTTP, but httpx builds one per client
        otherwise: 0.1 s each, 25 s of this process's time for the population)."""
        return httpx.AsyncClient(
            base_url=self.url, timeout=TIMEOUT,
            transport=httpx.AsyncHTTPTransport(verify=TLS_CONTEXT),
            headers={"Authorization": f"Bearer {device.token}", "User-Agent": "peermark-load"})

    async def _sleep_until(self, moment: float) -> bool:
        """Sleep until ``moment`` (loop time); False if the window closes first."""
        loop = asyncio.get_running_loop()
        if moment >= self.deadline:
            await asyncio.sleep(max(0.0, self.deadline - loop.time()))
            return False
        await asyncio.sleep(max(0.0, moment - loop.time()))
        return True

    def _holding(self, work: Work, *, whole: bool = True) -> dict[str, str]:
        count = work.manifest.piece_count
        if whole or count == 1:
            bits = bitfield_full(count)
        else:
            bits = bitfield_from_indices(self.rng.sample(range(count), self.rng.randint(1, count)),
                                         count)
        return {"work": work.id, "bitfield": bitfield_encode(bits)}

    async def _announce(self, client: httpx.AsyncClient, device: Device, port: int,
                        holdings: list[dict[str, str]], *, replace: bool) -> None:
        await self.recorder.call(ANNOUNCE, client, "POST", "/api/v1/peers/announce/", json={
            "device": device.device_id, "host": "", "port": port, "holdings": holdings,
            "replace": replace, "version": "load"})

    async def _heartbeat(self, client: httpx.AsyncClient, device: Device, port: int,
                         holdings: list[dict[str, str]]) -> None:
        response = await self.recorder.call(
            HEARTBEAT, client, "POST", "/api/v1/peers/heartbeat/",
            json={"device": device.device_id}, expect=("not_announced",))
        if response is not None and response.status_code == 409:
            await self._announce(client, device, port, holdings, replace=True)

    # --- the population ---------------------------------------------------------------

    async def peer(self, device: Device, port: int) -> None:
        loop = asyncio.get_running_loop()
        works = self.world.works
        held = self.rng.sample(works, self.rng.randint(1, min(6, len(works))))
        holdings = [self._holding(w, whole=self.rng.random() < 0.7) for w in held]
        async with self._client(device) as client:
            if not await self._sleep_until(self.start + self.rng.uniform(0, HEARTBEAT_SECONDS)):
                return
            await self._announce(client, device, port, holdings, replace=True)
            beat = loop.time() + HEARTBEAT_SECONDS
            acquire = loop.time() + self.rng.expovariate(1 / self.acquire_every)
            while True:
                moment = min(beat, acquire)
                if not await self._sleep_until(moment):
                    return
                if moment == beat:
                    await self._heartbeat(client, device, port, holdings)
                    beat += HEARTBEAT_SECONDS
                    continue
                acquire += self.rng.expovariate(1 / self.acquire_every)
                fresh = [w for w in works if w not in held]
                if fresh:
                    work = self.rng.choice(fresh)
                    held.append(work)
                    holdings.append(self._holding(work))
                    await self._announce(client, device, port, [holdings[-1]], replace=False)

    async def server(self, device: Device, port: int) -> None:
        loop = asyncio.get_running_loop()
        holdings = [self._holding(w) for w in self.world.works]
        async with self._client(device) as client:
            beat = self.start + self.rng.uniform(0, HEARTBEAT_SECONDS)
            flush = self.start + self.rng.uniform(0, OUTBOX_SECONDS)
            while True:
                moment = min(beat, flush)
                if not await self._sleep_until(moment):
                    return
                if moment == beat:
                    await self._heartbeat(client, device, port, holdings)
                    beat += HEARTBEAT_SECONDS
                else:
                    await self.flush(client, device, self.recorder)
                    flush = max(flush + OUTBOX_SECONDS, loop.time())

    async def flush(self, client: httpx.AsyncClient, device: Device, recorder: Recorder) -> None:
        """Submit the outbox in batches; keep what the platform did not answer."""
        outbox = self.outboxes[device.device_id]
        while outbox.pending:
            batch = outbox.pending[:ORDER_BATCH]
            response = await recorder.call(ORDERS, client, "POST", "/api/v1/metering/orders/",
                                           json={"orders": [token for token, _l, _n in batch]})
            if response is None or not response.is_success:
                return  # the daemon retries at its next turn
            try:
                results = [(batch[r["index"]], r["status"], r["reason"])
                           for r in response.json()["results"]]
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                recorder.error(ORDERS, f"unusable answer: {type(exc).__name__}")
                return
            for (_token, licence, nonce), status, reason in results:
                if status == "accepted":
                    self.metering.accepted.add((licence, nonce))
                elif status == "duplicate":
                    self.metering.duplicate += 1
                    recorder.error(ORDERS, "order answered duplicate")
                else:
                    self.metering.rejected[reason] += 1
                    recorder.error(ORDERS, f"order rejected: {reason}")
            del outbox.pending[:len(batch)]

    async def buyer(self, device: Device, works: list[Work]) -> None:
        loop = asyncio.get_running_loop()
        servers = {s.device_id for s in self.world.servers}
        moment = self.start + self.rng.uniform(0, self.buy_every)
        async with self._client(device) as client:
            for work in works:
                if not await self._sleep_until(moment):
                    return
                moment = max(moment + self.buy_every, loop.time())
                await self._buy(client, device, work, servers)

    async def _buy(self, client: httpx.AsyncClient, device: Device, work: Work,
                   servers: set[str]) -> None:
        rec = self.recorder
        if await rec.call(WORK, client, "GET", f"/api/v1/works/{work.id}/") is None:
            return
        response = await rec.call(PURCHASE, client, "POST", "/api/v1/purchases/", json={
            "work": work.id, "device": device.device_id,
            "expected_price_minor": work.price_minor},
            headers={"Idempotency-Key": str(uuid.uuid4())})
        if response is None or response.status_code != 201:
            return
        self.sales.purchases += 1
        now = int(time.time())
        ring = self.world.keyring
        try:
            body = response.json()
            licence = read_licence(body["licence"]["token"], keyring=ring, now=now,
                                   device_id=device.device_id)
            manifest = read_manifest(body["manifest"], keyring=ring, now=now)
        except (ValueError, KeyError, TypeError, LicensingError) as exc:
            rec.error(PURCHASE, f"unusable answer: {type(exc).__name__}")
            return
        response = await rec.call(SOURCES, client, "GET", f"/api/v1/works/{work.id}/sources/",
                                  params={"page_size": 100})
        if response is None or not response.is_success:
            return
        try:
            listed = [s["peer_id"] for s in response.json()["results"]
                      if s["peer_id"] in servers]
        except (ValueError, KeyError, TypeError) as exc:
            rec.error(SOURCES, f"unusable answer: {type(exc).__name__}")
            return
        if not listed:
            rec.error(SOURCES, "no serving agent listed")
            return
        chosen = self.rng.sample(listed, min(len(listed), DEFAULT_MAX_CONNECTIONS))
        served: dict[str, int] = defaultdict(int)
        for piece in range(manifest.piece_count):
            peer = chosen[piece % len(chosen)]
            length = manifest.piece_length(piece)
            token = sign_order(device.keys, licence_id=licence.licence_id, peer_id=peer,
                               piece=piece, byte_count=length, issued_at=int(time.time()))
            nonce = str(parse_document(token, DocumentKind.ORDER).claims["nonce"])
            self.outboxes[peer].pending.append((token, licence.licence_id, nonce))
            self.metering.signed += 1
            served[peer] += length
        # No copy is written here: the receipt names a random hash for it.
        receipt = sign_receipt(device.keys, licence_id=licence.licence_id,
                               output_sha256=os.urandom(32),
                               served=dict(served), marked=True, issued_at=int(time.time()))
        response = await rec.call(RECEIPT, client, "POST",
                                  f"/api/v1/licences/{licence.licence_id}/receipt/",
                                  json={"receipt": receipt})
        if response is not None and response.status_code == 201:
            self.sales.receipts += 1

    # --- the run --------------------------------------------------------------------------

    async def _watch_lag(self) -> None:
        """How late the event loop wakes: if this process could not keep up, latencies
        would include its own delays."""
        loop = asyncio.get_running_loop()
        while loop.time() < self.deadline:
            planned = loop.time() + 0.05
            await asyncio.sleep(0.05)
            self.lags.append(loop.time() - planned)

    async def run(self) -> float:
        """The measured window; then the serving agents' last flush (the daemon's
        ``flush_outbox_final`` on its way out), recorded apart. Returns the window's
        length as measured."""
        loop = asyncio.get_running_loop()
        self.start = loop.time()
        self.deadline = self.start + self.seconds
        world = self.world
        per_buyer = len(world.works)
        tasks = [self.peer(d, 20_000 + i) for i, d in enumerate(world.peers)]
        tasks += [self.server(d, 7000 + i) for i, d in enumerate(world.servers)]
        for device in world.buyers:
            order = self.rng.sample(world.works, per_buyer)
            tasks.append(self.buyer(device, order))
        cpu = time.process_time()
        await asyncio.gather(self._watch_lag(), *tasks)
        elapsed = loop.time() - self.start
        self.cpu_seconds = time.process_time() - cpu
        for device in world.servers:
            async with self._client(device) as client:
                await self.flush(client, device, self.after)
        return elapsed
