"""opentracker, the reference: started in whitelist mode on loopback with a config of the
run's own, filled with peers through its own HTTP announce, measured by RSS.

opentracker knows a peer by address and port within a torrent (the peer_id is not the
key), and takes the address from the connection (the Debian build has no
``WANT_IP_FROM_QUERY_STRING``): so the peers of one torrent are one loopback address on
distinct ports. It answers one request per connection and closes it (no keep-alive), so
its rates include a TCP connect per request; that is how every BitTorrent client talks to
it, too.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BINARY = "/usr/bin/opentracker"
PEER_PORT_BASE = 20_000


def peer_id(port: int) -> bytes:
    """A 20-byte peer id of a client-like shape, one per simulated peer port."""
    return b"-PM0001-" + b"%012d" % port


def announce_path(info_hash: bytes, port: int, *, numwant: int, event: str = "") -> str:
    """The announce a BitTorrent client sends, as a seeder (left=0), compact answers.
    Binary values are %-escaped byte by byte (opentracker does not read ``+`` as a
    space, which ``urlencode`` would write for a 0x20 byte)."""
    return (f"/announce?info_hash={quoted(info_hash)}&peer_id={quoted(peer_id(port))}"
            f"&port={port}&uploaded=0&downloaded=0&left=0&numwant={numwant}&compact=1"
            + (f"&event={event}" if event else ""))


def quoted(info_hash: bytes) -> str:
    return urllib.parse.quote_from_bytes(info_hash, safe="")


def info_hashes(count: int, *, seed: str) -> list[bytes]:
    """Deterministic distinct info hashes (a run can be repeated exactly)."""
    import hashlib

    return [hashlib.sha1(f"{seed}:{i}".encode(), usedforsecurity=False).digest()
            for i in range(count)]


@dataclass
class Tracker:
    process: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        """Resident set of the process now, from /proc (KiB)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS for opentracker")


@contextmanager
def running(root: Path, port: int, hashes: Sequence[bytes]) -> Iterator[Tracker]:
    """opentracker on 127.0.0.1:``port``, whitelisting ``hashes``. It chroots into
    ``root`` and drops to ``nobody`` when started as root, so its files live there and
    the whitelist is named from inside the chroot."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 - opentracker reads it as nobody after chroot
    (root / "whitelist.txt").write_text("".join(h.hex() + "\n" for h in hashes))
    config = root / "opentracker.conf"
    config.write_text(
        f"listen.tcp 127.0.0.1:{port}\n"
        "access.whitelist /whitelist.txt\n"
        f"tracker.rootdir {root}\n"
        "tracker.user nobody\n"
        "access.stats 127.0.0.1\n")
    log = (root / "opentracker.log").open("wb")
    process = subprocess.Popen([BINARY, "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    tracker = Tracker(process, port, root)
    try:
        _wait_listening(port, process)
        _wait_whitelisted(port, hashes[-1])
        yield tracker
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"opentracker exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("opentracker did not start listening")


def _wait_whitelisted(port: int, info_hash: bytes) -> None:
    """opentracker reads its whitelist in a thread of its own after it starts listening:
    wait until it knows the last hash (a probe peer, taken out again at once)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            get(port, announce_path(info_hash, PEER_PORT_BASE - 1, numwant=0))
            get(port, announce_path(info_hash, PEER_PORT_BASE - 1, numwant=0, event="stopped"))
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def _get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()  # opentracker closes the connection after its answer
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if head.split(b" ", 2)[1:2] != [b"200"]:
        raise RuntimeError(f"opentracker answered {head[:60]!r}")
    if body.startswith(b"d14:failure reason"):
        raise RuntimeError(f"opentracker refused: {body[:120]!r}")
    return body


def get(port: int, path: str) -> bytes:
    return asyncio.run(_get(port, path))


def fill(port: int, hashes: Sequence[bytes], peers: int, *, concurrency: int = 48) -> float:
    """Announce ``peers`` peers (ports PEER_PORT_BASE + j) in every torrent; returns the
    seconds it took."""
    async def main() -> None:
        jobs = ((h, PEER_PORT_BASE + j) for h in hashes for j in range(peers))

        async def worker() -> None:
            for info_hash, peer_port in jobs:
                await _get(port, announce_path(info_hash, peer_port, numwant=0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    began = time.monotonic()
    asyncio.run(main())
    return time.monotonic() - began


def peer_count(port: int) -> int:
    """The peers opentracker holds over all torrents (its own statistics)."""
    return int(get(port, "/stats?mode=peer").split(b"\n", 1)[0])


def fill_fast(tracker: Tracker, listing: Path, peers: int, total: int) -> float:
    """Like ``fill`` for a large load: wrk announces each (torrent, peer) pair of the
    torrents in ``listing`` (URL-quoted hashes) until opentracker counts ``total`` peers."""
    from benchmarks.index import wrk

    return wrk.fill(tracker.url, "ot_fill.lua", [str(listing), str(peers),
                                                 str(PEER_PORT_BASE)],
                    done=lambda: peer_count(tracker.port) >= total)


def compact_peers(body: bytes) -> int:
    """How many IPv4 peers a compact announce answer lists (6 bytes each)."""
    at = body.find(b"5:peers")
    if at == -1:
        raise RuntimeError(f"no peers in {body[:120]!r}")
    rest = body[at + len(b"5:peers"):]
    length, _, _ = rest.partition(b":")
    return int(length) // 6
