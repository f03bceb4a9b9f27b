"""Memory per (peer, work) holding at a million holdings.

Redis's ``used_memory`` is the whole server's, every database of it together, so the
measure takes a redis-server of its own (same binary, no persistence) rather than a
database of the shared one, where other users' keys would come and go in the difference.
The holdings are loaded through ``peerindex.store`` as the platform loads them.

opentracker's side (optional, labelled as such): its resident set before and after a
million (peer, torrent) pairs announced over HTTP.
"""

from __future__ import annotations

import random
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from benchmarks.index import fastpath, tracker
from peerindex import schema

FAMILIES = {"peer records (pmi:p:)": schema.PEER, "holders (pmi:w:)": schema.HOLDERS,
            "partial bitfields (pmi:pb:)": schema.BITFIELDS,
            "held sets (pmi:h:)": schema.HELD}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_redis() -> Iterator[redis.Redis]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="index-bench-redis-") as tmp:
        process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn = redis.Redis(port=port)
        try:
            for _ in range(200):
                try:
                    conn.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield conn
        finally:
            conn.close()
            process.terminate()
            process.wait(timeout=30)


@dataclass
class RedisMemory:
    holdings: int
    peers: int
    works: int
    partial_share: float
    used_before: int
    used_after: int
    rss_after: int
    load_seconds: float
    families: dict[str, tuple[int, int]]  # name -> (keys, bytes by MEMORY USAGE)
    encodings: dict[str, int]  # "family: encoding" -> keys
    version: str  # the redis-server's

    @property
    def per_holding(self) -> float:
        return (self.used_after - self.used_before) / self.holdings


def redis_memory(*, peers: int, per_peer: int, works: int, partial_share: float,
                 seed: int = 1) -> RedisMemory:
    """``peers`` devices each holding ``per_peer`` of ``works`` works (chosen at random),
    a ``partial_share`` of the holdings partial (a random half to nearly all pieces)."""
    rng = random.Random(seed)
    names = [fastpath.work_id("m", i) for i in range(works)]
    pieces = [fastpath.piece_count(rng) for _ in range(works)]
    devices = []
    for i in range(peers):
        device = fastpath.Device(f"mem-{i:06d}", 10 + i, f"10.{i >> 8 & 255}.{i & 255}.9")
        for w in rng.sample(range(works), per_peer):
            bits = (fastpath.partial_bitfield(rng, pieces[w]) if rng.random() < partial_share
                    else None)
            device.holdings.append(fastpath.Holding(w, bits))
        devices.append(device)
    with private_redis() as conn:
        from peerindex import store

        store.works_put(conn, {w: store.WorkEntry(n) for w, n in zip(names, pieces,
                                                                     strict=True)})
        before = int(conn.info("memory")["used_memory"])
        began = time.monotonic()
        fastpath.load_devices(conn, devices, names, pieces, now=int(time.time()),
                              peer_ttl=3600, group=50)
        took = time.monotonic() - began
        # The flush's to-do lists, drained every 2 s in service: not what holdings cost.
        conn.delete(schema.DIRTY, getattr(schema, "SEEN", schema.DIRTY))
        info = conn.info("memory")
        families: dict[str, tuple[int, int]] = {}
        encodings: dict[str, int] = {}
        for label, prefix in FAMILIES.items():
            keys = list(conn.scan_iter(match=prefix + "*", count=5000))
            pipe = conn.pipeline(transaction=False)
            for key in keys:
                pipe.memory_usage(key, samples=0)
            sizes = pipe.execute()
            families[label] = (len(keys), sum(int(s or 0) for s in sizes))
            pipe = conn.pipeline(transaction=False)
            for key in keys:
                pipe.object("encoding", key)
            for encoding in pipe.execute():
                name = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
                encodings[f"{label}: {name}"] = encodings.get(f"{label}: {name}", 0) + 1
        return RedisMemory(
            holdings=sum(len(d.holdings) for d in devices), peers=peers, works=works,
            partial_share=partial_share, used_before=before,
            used_after=int(info["used_memory"]), rss_after=int(info["used_memory_rss"]),
            load_seconds=took, families=families, encodings=encodings,
            version=str(conn.info("server")["redis_version"]))


@dataclass
class TrackerMemory:
    pairs: int
    rss_before_kib: int
    rss_after_kib: int
    load_seconds: float
    checked_peers: int

    @property
    def per_pair(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) * 1024 / self.pairs


def tracker_memory(*, torrents: int, peers: int, work: Path, port: int) -> TrackerMemory:
    """A fresh opentracker, then ``peers`` peers announced in each of ``torrents``
    torrents (wrk, each (torrent, peer) once, in order), RSS before and after."""
    hashes = tracker.info_hashes(torrents, seed="memory")
    listing = work / "memory-hashes.txt"
    listing.write_text("".join(tracker.quoted(h) + "\n" for h in hashes))
    with tracker.running(work / "ot-memory", port, hashes) as running:
        before = running.rss_kib()
        began = time.monotonic()
        tracker.fill_fast(running, listing, peers, torrents * peers)
        took = time.monotonic() - began
        after = running.rss_kib()
        body = tracker.get(port, tracker.announce_path(hashes[-1], tracker.PEER_PORT_BASE,
                                                       numwant=200))
        return TrackerMemory(torrents * peers, before, after, took,
                             tracker.compact_peers(body))
