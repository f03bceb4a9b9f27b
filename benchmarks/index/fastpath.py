"""The index fast path under test: its simulated world (works, devices, holdings,
credentials), loaded into Redis through ``peerindex.store`` as the platform would, the
service started as operators start it, and the data files the wrk scripts read.

The world is deterministic (a seeded generator), so two runs measure the same thing.
Every simulated device has an address of its own (a /24 of its own in 10.0.0.0/8): the
wrk scripts send it as ``X-Forwarded-For``, which the service trusts from loopback (as
behind its proxy in production), so the peers a lookup spreads across networks are as
the loader stored them, and the per-address rate limit counts each device apart.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from licensing.core.bitfield import bitfield_from_indices, bitfield_full
from peerindex import credentials, store

ROOT = Path(__file__).resolve().parents[2]
SECRET_HEX = "5e" * 32  # the benchmark's own index key, not a secret of anyone's
PEER_PORT = 7000


def work_id(kind: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"peermark-bench-index/{kind}/{index}"))


def device_host(kind: int, index: int) -> str:
    """A /24 of its own for each device (``kind`` 0: the lookup world, 1: the batch
    world; up to 16,384 devices of each)."""
    if not 0 <= index < 16_384:
        raise ValueError("at most 16,384 devices of a kind")
    return f"10.{kind * 64 + (index >> 8)}.{index & 255}.7"


def piece_count(rng: random.Random) -> int:
    """1 MiB pieces (the platform's default), works of 8 MiB to 2 GiB, log-uniform."""
    return round(math.exp(rng.uniform(math.log(8), math.log(2048))))


def partial_bitfield(rng: random.Random, pieces: int) -> bytes:
    """A holder part way through: a random half to nearly all of the pieces."""
    have = rng.randint(max(1, pieces // 2), pieces - 1)
    return bitfield_from_indices(rng.sample(range(pieces), have), pieces)


@dataclass
class Holding:
    work: int
    bits: bytes | None  # None: every piece


@dataclass
class Device:
    name: str
    user: int
    host: str
    holdings: list[Holding] = field(default_factory=list)


@dataclass
class World:
    works: list[str]
    pieces: list[int]
    devices: list[Device]
    # (work index, device index) pairs of the single-work announces: every one a holder.
    pairs: list[tuple[int, int]]
    batch_works: list[str]
    batch_pieces: list[int]
    batch_devices: list[Device]


def build(*, works: int, holders: int, devices: int, batch_devices: int, batch_size: int,
          partial_share: float, seed: int = 23) -> World:
    """The lookup world: ``works`` works, each held by ``holders`` devices out of
    ``devices`` (device ``(w*holders + j) % devices`` is holder j of work w, so each
    device holds ``works*holders/devices`` works). Apart from it, the batch world:
    ``batch_devices`` devices each holding ``batch_size`` of as many batch works (so the
    batched announces refresh holdings without changing what a lookup finds)."""
    rng = random.Random(seed)
    names = [work_id("w", i) for i in range(works)]
    pieces = [piece_count(rng) for _ in range(works)]
    people = [Device(f"bench-d{i:06d}", 1000 + i, device_host(0, i)) for i in range(devices)]
    pairs = []
    for w in range(works):
        for j in range(holders):
            d = (w * holders + j) % devices
            bits = partial_bitfield(rng, pieces[w]) if rng.random() < partial_share else None
            people[d].holdings.append(Holding(w, bits))
            pairs.append((w, d))
    batch_names = [work_id("b", i) for i in range(max(batch_devices, batch_size))]
    batch_pieces = [piece_count(rng) for _ in batch_names]
    batchers = [Device(f"bench-b{i:06d}", 500_000 + i, device_host(1, i))
                for i in range(batch_devices)]
    for k, device in enumerate(batchers):
        for i in range(batch_size):
            w = (k + i * max(1, len(batch_names) // batch_size)) % len(batch_names)
            bits = (partial_bitfield(rng, batch_pieces[w]) if rng.random() < partial_share
                    else None)
            device.holdings.append(Holding(w, bits))
    return World(names, pieces, people, pairs, batch_names, batch_pieces, batchers)


def _held(holding: Holding, names: Sequence[str], pieces: Sequence[int]) -> store.Held:
    if holding.bits is None:
        return store.Held(names[holding.work], pieces[holding.work], "")
    have = int.from_bytes(holding.bits, "big").bit_count()
    return store.Held(names[holding.work], have, base64.b64encode(holding.bits).decode())


def load(conn: redis.Redis, world: World, *, peer_ttl: int) -> float:
    """The catalogue and every device's announce, through ``peerindex.store`` (pipelined
    in groups); returns the seconds it took."""
    began = time.monotonic()
    store.works_put(conn, {w: store.WorkEntry(n) for w, n in zip(world.works, world.pieces,
                                                                  strict=True)})
    store.works_put(conn, {w: store.WorkEntry(n) for w, n in
                           zip(world.batch_works, world.batch_pieces, strict=True)})
    now = int(time.time())
    groups = [(world.devices, world.works, world.pieces),
              (world.batch_devices, world.batch_works, world.batch_pieces)]
    for devices, names, pieces in groups:
        load_devices(conn, devices, names, pieces, now=now, peer_ttl=peer_ttl)
    return time.monotonic() - began


def load_devices(conn: redis.Redis, devices: Sequence[Device], names: Sequence[str],
                 pieces: Sequence[int], *, now: int, peer_ttl: int, group: int = 100) -> None:
    for start in range(0, len(devices), group):
        pipe = conn.pipeline(transaction=False)
        for device in devices[start:start + group]:
            store.announce(pipe, device=device.name, user=device.user, host=device.host,
                           port=PEER_PORT, version="bench",
                           held=[_held(h, names, pieces) for h in device.holdings],
                           replace=True, now=now, peer_ttl=peer_ttl)
        pipe.execute()


def mint(device: Device, *, ttl: int) -> str:
    return credentials.mint(bytes.fromhex(SECRET_HEX), user=device.user, device=device.name,
                            now=int(time.time()), ttl=ttl)


def batch_body(device: Device, world: World) -> str:
    """The JSON of a device's full announce: every holding with its bitfield (standard
    base64; a holder of every piece sends every bit set), as an agent sends it."""
    holdings = []
    for h in device.holdings:
        bits = h.bits if h.bits is not None else bitfield_full(world.batch_pieces[h.work])
        holdings.append({"work": world.batch_works[h.work],
                         "bitfield": base64.b64encode(bits).decode()})
    return json.dumps({"port": PEER_PORT, "host": "", "version": "bench", "replace": False,
                       "holdings": holdings}, separators=(",", ":"))


def write_data(directory: Path, world: World, *, ttl: int) -> dict[str, Path]:
    """The files the wrk scripts load: one line per item, fields split by tabs."""
    directory.mkdir(parents=True, exist_ok=True)
    tokens = [mint(d, ttl=ttl) for d in world.devices]
    files = {name: directory / f"{name}.txt" for name in ("devices", "works", "pairs", "batch")}
    files["devices"].write_text("".join(f"{t}\t{d.host}\n"
                                        for t, d in zip(tokens, world.devices, strict=True)))
    files["works"].write_text("".join(f"{w}\n" for w in world.works))
    lines = []
    for device_index, device in enumerate(world.devices):
        for h in device.holdings:
            bits = ("" if h.bits is None
                    else base64.urlsafe_b64encode(h.bits).rstrip(b"=").decode())
            lines.append(f"{world.works[h.work]}\t{device_index + 1}\t{bits}\n")
    files["pairs"].write_text("".join(lines))
    files["batch"].write_text("".join(f"{mint(d, ttl=ttl)}\t{d.host}\t{batch_body(d, world)}\n"
                                      for d in world.batch_devices))
    return files


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User+system CPU of the service's processes (the supervisor and its workers)."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def service_env(redis_url: str, peer_ttl: int) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "PEERMARK_INDEX_SECRET": SECRET_HEX,
            "PEERMARK_PEER_TIMEOUT_SECONDS": str(peer_ttl)}


@contextmanager
def running(port: int, workers: int, env: dict[str, str], log: Path) -> Iterator[Service]:
    """``python -m peerindex`` as operators run it behind a proxy (uvicorn, uvloop,
    httptools; X-Forwarded-For trusted from loopback, where the wrk scripts send it)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "peerindex", "--port", str(port), "--workers", str(workers),
             "--forwarded-allow-ips", "127.0.0.1"],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        service = Service(process, port, log)
        try:
            _wait_healthy(service)
            yield service
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_healthy(service: Service) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"the index exited ({service.process.returncode}): "
                               f"{service.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{service.url}/index/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the index did not become healthy")


def request(url: str, *, token: str, host: str, method: str = "GET",
            body: bytes | None = None) -> tuple[int, dict[str, object]]:
    """One request as the wrk scripts make it, for checking answers before measuring."""
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": host}
    if body is not None:
        headers["Content-Type"] = "application/json"
    answer = httpx.request(method, url, content=body, headers=headers, timeout=10)
    return answer.status_code, answer.json() if answer.content else {}
