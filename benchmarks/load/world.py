"""The people, devices, works and money a load run needs, made before the measured window:
accounts and their API tokens in the management shell (the API has no sign-up), then
everything else through the public API as agents and rights holders do it (device keys
registered as ``agent init`` does, works uploaded and packaged by the Celery worker,
wallets topped up through the payment provider's webhook)."""

from __future__ import annotations

import asyncio
import io
import json
import random
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.load.launch import Platform
from licensing.core import DeviceKeys, KeyRing, Manifest, read_manifest

CURRENCY = "EUR"
PRICE_MINOR = 1250


@dataclass
class Device:
    """One simulated agent install: an account, its API token and its device keys."""

    username: str
    token: str
    keys: DeviceKeys = field(default_factory=DeviceKeys.generate)

    @property
    def device_id(self) -> str:
        return self.keys.device_id


@dataclass(frozen=True)
class Work:
    id: str
    price_minor: int
    manifest: Manifest


@dataclass
class World:
    peers: list[Device]
    servers: list[Device]
    buyers: list[Device]
    works: list[Work]
    keyring: KeyRing
    setup_seconds: dict[str, float] = field(default_factory=dict)


def accounts_create(prefix: str, counts: dict[str, int]) -> None:
    """In ``manage.py shell``: one rights holder and ``counts`` users of each group, with
    an API token each; prints ``{group: [[username, token], ...]}`` as JSON."""
    from django.db import transaction

    from exchange.accounts.models import Role, User
    from exchange.accounts.services import api_token_create

    made: dict[str, list[list[str]]] = {}
    with transaction.atomic():
        for group, count in {"seller": 1, **counts}.items():
            role = Role.RIGHTS_HOLDER if group == "seller" else Role.BUYER
            made[group] = []
            for index in range(count):
                user = User.objects.create_user(f"{prefix}-{group}-{index}", password=None,
                                                role=role)
                made[group].append([user.username, api_token_create(user=user, name="load").raw])
    print(json.dumps(made))


def _png(seed: int, width: int, height: int) -> bytes:
    """A noisy picture (it compresses badly, so its size is about width x height x 3)."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3),
                                                  dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, format="PNG", compress_level=1)
    return out.getvalue()


TLS_CONTEXT = ssl.create_default_context()  # one for all clients: each costs 0.1 s to build


def _client(platform: Platform, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=platform.url, timeout=httpx.Timeout(60, connect=10),
                             transport=httpx.AsyncHTTPTransport(verify=TLS_CONTEXT),
                             headers={"Authorization": f"Bearer {token}"})


def _ok(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 300:
        raise RuntimeError(f"setup: {what} answered {response.status_code}: "
                           f"{response.text[:500]}")
    return response.json()


async def _gather_limited(jobs: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def _register_device(platform: Platform, device: Device) -> None:
    public = device.keys.public.to_b64url()
    async with _client(platform, device.token) as client:
        body = _ok(await client.post("/api/v1/devices/", json={
            "name": device.username, "signing_key": public["sig"], "kem_key": public["kem"]}),
            "device registration")
    if body.get("device_id", device.device_id) != device.device_id:
        raise RuntimeError("setup: the platform names the device differently")


async def _register_work(client: httpx.AsyncClient, index: int, png: bytes) -> str:
    body = _ok(await client.post("/api/v1/works/", data={
        "title": f"Load work {index}", "price_minor": str(PRICE_MINOR), "currency": CURRENCY,
        "allowed_uses": ["view", "download"]},
        files={"file": (f"load-{index}.png", png, "image/png")}), "work registration")
    return str(body["id"])


async def _works(platform: Platform, seller_token: str, count: int, size: tuple[int, int],
                 keyring: KeyRing) -> list[Work]:
    async with _client(platform, seller_token) as client:
        pngs = [_png(index, *size) for index in range(count)]
        ids = await _gather_limited([_register_work(client, i, png)
                                     for i, png in enumerate(pngs)], 4)
        deadline = time.monotonic() + 120 + 5 * count
        waiting = set(ids)
        while waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"setup: {len(waiting)} works were never packaged")
            for work_id in sorted(waiting):
                status = _ok(await client.get(f"/api/v1/works/{work_id}/"), "work")["status"]
                if status == "ready":
                    waiting.discard(work_id)
                elif status != "processing":
                    raise RuntimeError(f"setup: work {work_id} is {status}")
            await asyncio.sleep(0.5)
        works = []
        for work_id in ids:
            token = _ok(await client.get(f"/api/v1/works/{work_id}/manifest/"), "manifest")
            manifest = read_manifest(token["token"], keyring=keyring, now=int(time.time()))
            works.append(Work(id=work_id, price_minor=PRICE_MINOR, manifest=manifest))
    return works


async def _top_up(platform: Platform, buyer: Device, amount_minor: int) -> None:
    async with _client(platform, buyer.token) as client:
        _ok(await client.post("/api/v1/wallet/topups/",
                              json={"amount_minor": amount_minor, "currency": CURRENCY},
                              headers={"Idempotency-Key": str(uuid.uuid4())}), "top-up")
        deadline = time.monotonic() + 120
        while True:
            balances = _ok(await client.get("/api/v1/wallet/"), "wallet")["balances"]
            held = sum(b["balance_minor"] for b in balances
                       if b["kind"] == "wallet" and b["currency"] == CURRENCY)
            if held >= amount_minor:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("setup: a top-up was never credited")
            await asyncio.sleep(0.3)


async def _announce_all(platform: Platform, server: Device, works: list[Work]) -> None:
    """A serving agent that has been running for a while: it holds every work."""
    from licensing.core.bitfield import bitfield_encode, bitfield_full

    async with _client(platform, server.token) as client:
        _ok(await client.post("/api/v1/peers/announce/", json={
            "device": server.device_id, "port": 7000 + int(server.username.rsplit("-", 1)[1]),
            "replace": True, "holdings": [
                {"work": w.id, "bitfield": bitfield_encode(bitfield_full(w.manifest.piece_count))}
                for w in works]}), "serving agent's announce")


def build(platform: Platform, *, peers: int, servers: int, buyers: int, works: int,
          work_size: tuple[int, int], purchases_per_buyer: int, rng: random.Random) -> World:
    """Everything the run needs; the times each step took go in ``setup_seconds``."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    prefix = f"load{rng.randrange(10**6)}"
    counts = {"peer": peers, "server": servers, "buyer": buyers}
    output = platform.manage("shell", "-c", "from benchmarks.load.world import accounts_create; "
                             f"accounts_create({prefix!r}, {counts!r})")
    made = json.loads(output.strip().splitlines()[-1])
    timings["accounts"] = time.monotonic() - started

    async def rest() -> World:
        keyring = KeyRing.from_jwks(httpx.get(f"{platform.url}/.well-known/jwks.json").content)
        groups = {group: [Device(username, token) for username, token in made[group]]
                  for group in counts}
        step = time.monotonic()
        everyone = [d for group in counts for d in groups[group]]
        await _gather_limited([_register_device(platform, d) for d in everyone], 16)
        timings["devices"] = time.monotonic() - step
        step = time.monotonic()
        catalogue = await _works(platform, made["seller"][0][1], works, work_size, keyring)
        timings["works"] = time.monotonic() - step
        step = time.monotonic()
        amount = PRICE_MINOR * (purchases_per_buyer + 2)
        await _gather_limited([_top_up(platform, b, amount) for b in groups["buyer"]], 8)
        await _gather_limited([_announce_all(platform, s, catalogue)
                               for s in groups["server"]], 8)
        timings["money and serving agents"] = time.monotonic() - step
        return World(peers=groups["peer"], servers=groups["server"], buyers=groups["buyer"],
                     works=catalogue, keyring=keyring, setup_seconds=timings)

    return asyncio.run(rest())
