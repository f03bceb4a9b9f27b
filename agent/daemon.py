"""``serve``: the agent as a daemon.

One asyncio loop runs the piece server (server.py) and the chores around it:
announce what is held and heartbeat to the platform; notice pieces another process
(``get``) added and announce them; submit the signed orders collected for metering;
keep the platform's keys and revocation list fresh; send receipts that could not be
sent; and, for the platform's seed agent, import every ready work's ciphertext. Each
chore survives the platform being down and catches up when it is back.

It prints nothing itself: an ``UploadMeter`` counts what is served, and the caller's
``report``, if any, is handed a snapshot every ``report_seconds`` (``serve`` draws its
status line with it), with the seeding credit the platform's wallet shows, fetched
once a minute while someone is reporting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from agent.activity import UploadMeter, UploadSnapshot, start_of_day
from agent.context import Agent, AgentError
from agent.direct_messages import folder_for
from agent.gnutella import (
    GnutellaNode,
    Neighbour,
    holdings_from_store,
    known_neighbours,
)
from agent.index_client import IndexClient
from agent.library import WorkTitles
from agent.outbox import OrderOutbox
from agent.platform import PlatformError, PlatformUnreachableError
from agent.receipts import send_pending_receipts
from agent.server import PieceServer, start_server
from agent.store import PieceStore, StoreError
from licensing.core import LicensingError
from licensing.core.bitfield import bitfield_encode

log = logging.getLogger("agent.daemon")

HEARTBEAT_SECONDS = 30.0
RESCAN_SECONDS = 3.0
OUTBOX_SECONDS = 5.0
TRUST_SECONDS = 600.0
IMPORT_SECONDS = 20.0
CREDIT_SECONDS = 60.0
REPORT_SECONDS = 60.0


@dataclass
class ServeOptions:
    host: str
    port: int
    upload_limit_bps: int | None = None
    import_from: Path | None = None
    known_peers: list[str] = field(default_factory=list)
    outbox_seconds: float = OUTBOX_SECONDS
    report_seconds: float = REPORT_SECONDS  # how often ``report`` is called (0: never)
    once: bool = False  # run each chore once, then stop (for tests)


class Daemon:
    def __init__(self, agent: Agent, options: ServeOptions, *,
                 report: Callable[[UploadSnapshot], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.agent = agent
        self.options = options
        self.report = report
        self.meter = UploadMeter(clock=clock)
        self._clock = clock
        self.store = PieceStore(agent.home.store_dir)
        self.outbox = OrderOutbox(agent.home.outbox_path)
        self.device_id = agent.device.device_id
        self.server: PieceServer | None = None
        self._announced: dict[str, bytes] = {}
        self._off_sale: set[str] = set()
        self._stop = asyncio.Event()
        self.url = ""

    @functools.cached_property
    def index(self) -> IndexClient:
        """Announces, heartbeats: by the peer index's fast path where the platform offers
        it, else by the platform's API (index_client.py)."""
        return IndexClient(self.agent.platform, device_id=self.device_id, clock=self._clock,
                           credential_file=self.agent.home.index_credential_path)

    # --- platform calls (httpx is synchronous: keep them off the event loop) ---------------

    async def _platform(self, call: Callable[[], Any]) -> Any:
        return await asyncio.to_thread(call)

    async def announce(self, *, replace: bool) -> None:
        holdings = {}
        for work in self.store.works():
            bits = work.bitfield()
            if replace or self._announced.get(work.work_id) != bits:
                holdings[work.work_id] = bits
        if replace:
            self._off_sale.clear()  # asked again at each full announce: it may be back
        for work_id in self._off_sale:
            holdings.pop(work_id, None)
        if not holdings and not replace:
            return
        index = self.index  # made here, on the loop: never by two worker threads at once
        listed = [{"work": w, "bitfield": bitfield_encode(b)} for w, b in holdings.items()]
        while True:
            try:
                await self._platform(functools.partial(
                    index.announce, port=self.options.port,
                    host=self.agent.config.public_host, holdings=listed, replace=replace))
                break
            except PlatformError as exc:
                # A work withdrawn from sale is refused by name; the others are still
                # announced (the refusal would otherwise stop every announce).
                gone = _refused_work(exc, listed)
                if gone is None:
                    raise
                log.info("work %s is no longer on sale: not announced", gone)
                self._off_sale.add(gone)
                holdings.pop(gone, None)
                listed = [item for item in listed if item["work"] != gone]
        self._announced.update(holdings)
        if self.server is not None:
            self.server.announced = True

    # --- chores -----------------------------------------------------------------------------

    async def rescan(self) -> None:
        """Pick up pieces that ``get`` (another process) verified into the store."""
        for work_id in self.store.work_ids():
            try:
                self.store.reload(work_id)
            except StoreError as exc:
                log.warning("cannot reload %s: %s", work_id, exc)
        with contextlib.suppress(PlatformUnreachableError, PlatformError):
            await self.announce(replace=False)

    async def flush_outbox(self) -> None:
        """Submit collected orders; keep them until the platform has answered."""
        while True:
            pending = self.outbox.pending(limit=500)
            if not pending:
                return
            body = await self._platform(
                functools.partial(self.agent.platform.orders_submit, [p.token for p in pending]))
            done = [p.id for p in pending]  # accepted, duplicate or rejected: all answered
            rejected = [r for r in body["results"] if r["status"] == "rejected"]
            for result in rejected:
                log.warning("order refused by the platform: %s", result["reason"])
            self.outbox.mark_sent(done)

    async def refresh_trust(self) -> None:
        await self._platform(self.agent.refresh_trust)

    async def import_works(self) -> None:
        """The seed agent: hold every ready work whose ciphertext is in ``import_from``."""
        folder = self.options.import_from
        if folder is None:
            return
        works = await self._platform(lambda: list(self.agent.platform.works_all()))
        for work in works:
            source = folder / f"{work['id']}.pmc"
            held = self.store.get(work["id"])
            if not source.exists() or (held is not None and held.complete):
                continue
            manifest = await self._platform(
                functools.partial(self.agent.platform.manifest, work["id"]))
            try:
                store = self.store.add_work(manifest["token"], keyring=self.agent.trust.keyring(),
                                            now=int(time.time()))
                result = await asyncio.to_thread(store.import_ciphertext, source)
            except (LicensingError, StoreError) as exc:
                log.warning("cannot import %s: %s", work["id"], exc)
                continue
            log.info("seeding %s: %s", work["title"], result)
        WorkTitles(self.agent.home.titles_path).keep(
            {str(w["id"]): str(w["title"]) for w in works}, held=set(self.store.work_ids()))
        await self.announce(replace=False)

    async def heartbeat(self) -> None:
        """A beat the index asks to wait for is skipped (``IndexClient.heartbeat``); every
        half hour or so the beat is a full announce, since the index forgets holdings
        that are not announced again (an announce is a heartbeat too)."""
        if self.index.full_announce_due():
            await self.announce(replace=True)
            return
        try:
            await self._platform(self.index.heartbeat)
        except PlatformError as exc:
            if exc.code == "not_announced":
                await self.announce(replace=True)
            else:
                raise

    async def receipts(self) -> None:
        await self._platform(lambda: send_pending_receipts(self.agent))

    async def refresh_credit(self) -> None:
        """The seeding and compute credit the platform's wallet shows (kept as they were if
        unreachable)."""
        wallet = await self._platform(self.agent.platform.wallet)
        self.meter.balances_seen(wallet["balances"])

    async def send_report(self) -> None:
        if self.report is not None:
            self.report(self.meter.snapshot())

    async def _every(self, seconds: float, chore: Callable[[], Awaitable[None]],
                     name: str) -> None:
        while not self._stop.is_set():
            try:
                await chore()
            except (PlatformUnreachableError, aiohttp.ClientError):
                log.info("%s: the platform is unreachable; will retry", name)
            except (PlatformError, StoreError, LicensingError, AgentError) as exc:
                log.warning("%s failed: %s", name, exc)
            except Exception:
                # Anything else (a malformed answer, a database error in the outbox) must
                # not end this chore for the daemon's lifetime: log it and try again.
                log.exception("%s failed unexpectedly; will retry", name)
            if self.options.once:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    # --- the loop ---------------------------------------------------------------------------

    async def _neighbours(self) -> list[Neighbour]:
        return await known_neighbours(self.options.known_peers)

    async def run(self) -> None:
        try:
            await self.refresh_trust()
        except (PlatformUnreachableError, AgentError) as exc:
            if not self.agent.trust.has_keys():
                raise AgentError("The platform is unreachable and this agent has never "
                                 "fetched its keys: start it once while online.") from exc
        gnutella = GnutellaNode(
            peer_id=self.device_id, url="",
            holdings=holdings_from_store(self.store),
            works_shared=lambda: len(self.store.work_ids()),
        )
        self.server = PieceServer(
            store=self.store, device_id=self.device_id,
            keyring_provider=self.agent.trust.keyring,
            revocations_provider=self.agent.trust.revocations, outbox=self.outbox,
            upload_limit_bps=self.options.upload_limit_bps, gnutella=gnutella,
            on_served=lambda _work, device, count: self.meter.served(device_id=device,
                                                                     byte_count=count),
            messages=folder_for(self.agent) if self.agent.config.username else None,
        )
        app = self.server.app()
        served, pieces = self.outbox.served_since(start_of_day(self._clock()))
        self.meter.start_day(bytes_served=served, pieces=pieces)
        running = await start_server(app, host=self.options.host, port=self.options.port)
        self.options.port = running.port
        self.url = running.url
        public = self.agent.config.public_host
        gnutella.url = f"http://{public}:{running.port}" if public else running.url
        for neighbour in await self._neighbours():
            gnutella.add_neighbour(neighbour)
        log.info("serving on %s as %s", running.url, self.device_id)
        with contextlib.suppress(PlatformUnreachableError, PlatformError):
            await self.announce(replace=True)
        chores = [
            self._every(HEARTBEAT_SECONDS, self.heartbeat, "heartbeat"),
            self._every(RESCAN_SECONDS, self.rescan, "rescan"),
            self._every(self.options.outbox_seconds, self.flush_outbox, "metering"),
            self._every(TRUST_SECONDS, self.refresh_trust, "trust"),
            self._every(OUTBOX_SECONDS, self.receipts, "receipts"),
            self._every(IMPORT_SECONDS, self.import_works, "import"),
        ]
        if self.report is not None and self.options.report_seconds > 0:
            # The credit is asked for only to be shown: no one watching, no request.
            chores.append(self._every(CREDIT_SECONDS, self.refresh_credit, "credit"))
            chores.append(self._every(self.options.report_seconds, self.send_report, "status"))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stop.set)
        try:
            tasks = [asyncio.create_task(c) for c in chores]
            if self.options.once:
                await asyncio.gather(*tasks)
            else:
                await self._stop.wait()
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await running.stop()
            await gnutella.close()
            self.store.close()
            self.outbox.close()
            with contextlib.suppress(Exception):
                await self.flush_outbox_final()
            if "index" in self.__dict__:
                self.index.close()

    async def flush_outbox_final(self) -> None:
        """A last try at submitting orders on the way out."""
        outbox = OrderOutbox(self.agent.home.outbox_path)
        try:
            self.outbox = outbox
            await self.flush_outbox()
        finally:
            outbox.close()

    def stop(self) -> None:
        self._stop.set()


_HOLDING_WORK = re.compile(r"holdings\[(\d+)\]\.work")


def _refused_work(error: PlatformError, listed: list[dict[str, str]]) -> str | None:
    """The work an announce was refused for as not on sale, if the refusal names one of
    ``listed`` (only a list the index takes in one request: its field counts from 0)."""
    if error.code != "unknown_work" or not 0 < len(listed) <= 1000:
        return None
    for name in error.fields:
        found = _HOLDING_WORK.fullmatch(name)
        if found and int(found.group(1)) < len(listed):
            return listed[int(found.group(1))]["work"]
    return None
