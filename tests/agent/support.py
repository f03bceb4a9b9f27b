"""Builders for the peer wire tests: seeders with real aiohttp servers on loopback.

Pure: no Django, no database. The sale (a packaged work, Bob's licence, the platform's
key ring) comes from the licensing core's own test builders. Every clock is the sale's
fixed ``NOW``, so licences and orders are judged at one instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from PIL import Image, ImageFilter

from agent.download import Downloader, Source
from agent.outbox import OrderOutbox
from agent.server import PieceServer, RunningServer, start_server
from agent.store import PieceStore, WorkStore
from licensing.core import (
    DeviceKeys,
    KeyRing,
    RevocationList,
    read_piece,
)
from tests.licensing.core_support import NOW, Sale

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def now() -> float:
    return float(NOW)


@dataclass
class Seeder:
    """A serving agent: its device, store, outbox and running server."""

    device: DeviceKeys
    store: PieceStore
    work: WorkStore
    outbox: OrderOutbox
    server: RunningServer
    app: web.Application

    @property
    def peer_id(self) -> str:
        return self.device.device_id

    @property
    def url(self) -> str:
        return self.server.url

    def source(self) -> Source:
        return Source(peer_id=self.peer_id, url=self.url, bitfield=self.work.bitfield())


def holder_store(
    sale: Sale, folder: Path, pieces: Iterable[int] | None = None
) -> tuple[PieceStore, WorkStore]:
    """A store under ``folder`` holding ``pieces`` (all by default) of the sale's work."""
    store = PieceStore(folder)
    work = store.add_verified(sale.manifest, sale.manifest_token)
    if pieces is None:
        work.import_ciphertext(sale.packaged.ciphertext_path)
    else:
        for index in pieces:
            work.write_piece(index, read_piece(sale.packaged.ciphertext_path, sale.manifest, index))
    return store, work


async def start_seeder(
    sale: Sale,
    folder: Path,
    *,
    pieces: Iterable[int] | None = None,
    revocations: Callable[[], RevocationList] | None = None,
    keyring: Callable[[], KeyRing] | None = None,
    upload_limit_bps: float | None = None,
    device: DeviceKeys | None = None,
    **options: Any,
) -> Seeder:
    device = device or DeviceKeys.generate()
    store, work = holder_store(sale, folder / "store", pieces)
    outbox = OrderOutbox(folder / "outbox.sqlite3")
    app = PieceServer(
        store=store,
        device_id=device.device_id,
        keyring_provider=keyring or (lambda: sale.agent_ring),
        revocations_provider=revocations or (lambda: sale.revocations),
        outbox=outbox,
        upload_limit_bps=upload_limit_bps,
        clock=now,
        **options,
    ).app()
    server = await start_server(app)
    return Seeder(device=device, store=store, work=work, outbox=outbox, server=server, app=app)


@contextlib.asynccontextmanager
async def seeders(
    sale: Sale, folder: Path, holdings: list[Iterable[int] | None], **options: Any
) -> AsyncIterator[list[Seeder]]:
    started: list[Seeder] = []
    try:
        for n, pieces in enumerate(holdings):
            seeder = await start_seeder(sale, folder / f"seeder-{n}", pieces=pieces, **options)
            started.append(seeder)
        yield started
    finally:
        for seeder in started:
            await seeder.server.stop()
            seeder.outbox.close()


@dataclass
class FakePeer:
    """A misbehaving peer: any handler, served on loopback, posing as a device id."""

    peer_id: str
    server: RunningServer
    requests: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url


async def start_fake_peer(
    handler: Callable[[web.Request, int], Awaitable[web.StreamResponse]],
    *,
    peer_id: str | None = None,
) -> FakePeer:
    device_id = peer_id or DeviceKeys.generate().device_id
    app = web.Application()
    fake = FakePeer(peer_id=device_id, server=None)  # type: ignore[arg-type]

    async def serve(request: web.Request) -> web.StreamResponse:
        index = int(request.match_info["index"])
        fake.requests.append(index)
        return await handler(request, index)

    app.router.add_get("/v1/pieces/{work_id}/{index}", serve)
    fake.server = await start_server(app)
    return fake


@dataclass
class RawPeer:
    """A TCP server that answers every request with raw bytes (garbage, truncation)."""

    peer_id: str
    server: asyncio.Server
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def start_raw_peer(answer: Callable[[bytes], bytes]) -> RawPeer:
    """Each request line + headers is read, ``answer(request_head)`` is sent, then close."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(answer(head))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return RawPeer(peer_id=DeviceKeys.generate().device_id, server=server, port=port)


def downloader(sale: Sale, work: WorkStore, **options: Any) -> Downloader:
    """Bob's downloader for the sale's work, at the sale's instant."""
    options.setdefault("clock", now)
    return Downloader(
        work=work,
        licence=sale.licence,
        licence_token=sale.licence_token,
        device=sale.bob,
        **options,
    )


def decrypted(sale: Sale, work: WorkStore) -> bytes:
    from licensing.core import decrypt_work

    out = io.BytesIO()
    decrypt_work(sale.packaged.content_key, sale.manifest, work.ciphertext_path, out)
    return out.getvalue()


def photo_png(width: int = 384, height: int = 320, *, seed: int = 7) -> bytes:
    """A natural-looking PNG (gradients, soft texture, grain) big enough to mark."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([80 + 100 * y / height, 120 + 60 * x / width, 200 - 80 * y / height], -1)
    texture = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), "L")
    soft = np.asarray(texture.filter(ImageFilter.GaussianBlur(4)), np.float64)
    rgb = base + 0.6 * (soft[..., None] - soft.mean()) + rng.normal(0, 2.0, (height, width, 1))
    image = Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
