"""Fan-out of one chat room: N WebSocket clients on loopback, M messages a second into the
room, through the real stack (uvicorn, exchange/asgi.py, the rooms' consumer, the Redis
channel layer, PostgreSQL for the stored lines), beside Redis's own PUBLISH rate measured
in the same run.

    .venv/bin/python benchmarks/rooms/run.py                 # 500 clients, 50/s, 3 rounds
    .venv/bin/python benchmarks/rooms/run.py --smoke         # 20 clients, 10/s, 1 round

A database of its own on the PostgreSQL server of ``--pg-server`` (dropped afterwards)
and a redis-server of its own (no persistence) on a free port; uvicorn with one process
(``--workers``). The listeners are signed in with API bearer tokens like agents, and
spread over ``--client-processes`` processes (2), each holding its share of the sockets
with a lean client (``LeanListener``, read by one epoll loop per process: it does the
handshake, offers permessage-deflate as browsers and the ``websockets`` client do,
inflates and parses the server's frames and answers pings, and nothing else), so that
the clients, on the same cores as the server, cost little. ``--client-processes 0`` runs
them as before, as ``websockets`` connections in this process. One more client
(``websockets``, in this process) says the lines, each carrying its round and sequence
number; the latency of a line is from just before its frame is sent to each listener's
receipt of it (every receipt counts: 500 per line), both read from the one monotonic
clock every process on the machine shares (``time.perf_counter``). Lines go out on a
fixed schedule (not waiting for receipts), so a slow server shows as latency, not as a
lower offered rate. The per-member rate limits are raised for the speaker (they are the
subject of tests, not of this benchmark).

Results go into docs/BENCHMARKS.md ("Chat rooms: fan-out").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, today, write_section

TITLE = "Chat rooms: fan-out"

NOTES = """How the stack got here, measured with this script on the same machine:

- channels_redis's default layer (`RedisChannelLayer`) pushes one copy of a line per
  socket into Redis lists and drops copies past a per-socket capacity: at 500 sockets and
  50 lines a second it delivered 55,500 of 500,000 receipts in a 20 s round, p50 17 s.
  The Pub/Sub layer (`RedisPubSubChannelLayer`, the setting now) publishes a line once;
  each process hands it to its own sockets.
- Channels' consumer closes stale database connections before every message it
  dispatches, a hop to the one thread that runs synchronous code: for a room of 500,
  500 hops in a row per line. The rooms' consumer skips it (its database access closes
  stale connections itself): at 100 sockets and 50 lines a second, p50 went from 2.3 s
  to 10 ms and p99 from 4.3 s to 16 ms.
- One delivery per room per process (exchange/rooms/fanout.py). Each socket was a
  consumer with a channel of its own in the room's group, so a line woke 500 consumers,
  each taking its copy from the layer, decoding it and dispatching it. Now a process joins
  a room's group once, takes each line from the layer once, and one task writes the
  frame's text to each of its sockets in turn (a socket busy with a frame of its own, or
  whose reader does not read, gets it through an outbox of its own). Server CPU for a
  50-lines-a-second round of 10 s: 19.3 s before, 9.4 s after.
- The listeners were 500 `websockets` connections in the benchmark's own process: a
  profile showed that process about half busy at 8,000 receipts a second, so it could
  not have taken 25,000 a second on the cores it shares with the server. They are now
  lean clients (one epoll loop, raw frames) in two processes: about 22 µs of client CPU
  per receipt, timed as before from just before the line is sent to its receipt.
- uvicorn's permessage-deflate (on by default; browsers and the `websockets` client
  offer it) compresses every frame once per socket, a compression context per
  connection: 15% of the server's profile. `scripts/run` and the production command
  turn it off, and so does this benchmark unless `--ws-per-message-deflate true`.
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(check: object, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


@dataclass
class Server:
    url: str
    redis_port: int
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        """CPU time of the server so far: uvicorn and its worker processes (its process
        group; redis-server is not in it)."""
        tick = os.sysconf("SC_CLK_TCK")
        group = self.processes[-1].pid
        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == group:
                    total += (int(fields[11]) + int(fields[12])) / tick
        return total


@contextlib.contextmanager
def server(work: Path, args: argparse.Namespace) -> Iterator[Server]:
    import psycopg

    redis_port, port = free_port(), free_port()
    database = f"peermark_bench_rooms_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{args.pg_server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PEERMARK_", "DATABASE_",
                                                                     "REDIS_"))},
        "DATABASE_URL": f"{args.pg_server}/{database}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "PEERMARK_DATA_DIR": str(work / "data"), "PEERMARK_LOG_LEVEL": "WARNING",
        "PEERMARK_ROOMS_SAY_RATE": "1000000/min", "PEERMARK_ROOMS_FRAME_RATE": "1000000/1s",
        "PEERMARK_ROOMS_HISTORY_ON_JOIN": "0", "PEERMARK_CELERY_EAGER": "true",
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
             "--appendonly", "no"], stdout=(work / "redis.log").open("wb"),
            stderr=subprocess.STDOUT))
        import redis

        _wait(lambda: redis.Redis(port=redis_port).ping(), seconds=20, what="redis-server")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                       check=True, timeout=600)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "exchange.asgi:application", "--host",
             "127.0.0.1", "--port", str(port), "--workers", str(args.workers), "--lifespan",
             "off", "--ws-max-size", "65536", "--ws", args.ws, "--ws-per-message-deflate",
             args.ws_per_message_deflate, "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=(work / "server.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True))
        import httpx

        url = f"http://127.0.0.1:{port}"
        _wait(lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200, seconds=60,
              what="uvicorn")
        yield Server(url=url, redis_port=redis_port, env=env, processes=processes)
    finally:
        for process in reversed(processes):
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()
        with psycopg.connect(f"{args.pg_server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def make_people(site: Server, listeners: int) -> dict[str, list[str]]:
    """A rights holder (whose room it is), a speaker and ``listeners`` members, each
    with an API token: their tokens, by role."""
    code = f"""
import json
from exchange.accounts.models import Role, User
from exchange.accounts.services import api_token_create
def person(name, role):
    user = User.objects.create_user(username=name, password=None, role=role)
    return api_token_create(user=user, name="bench").raw
out = {{"owner": [person("bench_rita", Role.RIGHTS_HOLDER)],
        "speaker": [person("bench_speaker", Role.BUYER)],
        "listeners": [person(f"bench_l{{i}}", Role.BUYER) for i in range({listeners})]}}
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
                            env=site.env, capture_output=True, text=True, check=True,
                            timeout=600)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def redis_publish_rate(port: int, messages: int) -> tuple[float, str]:
    """Redis's own PUBLISH rate on the same server: redis-benchmark if installed (50
    connections, 16 commands pipelined), else redis-py pipelined PUBLISH from one client."""
    if shutil.which("redis-benchmark"):
        out = subprocess.run(
            ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(messages),
             "-c", "50", "-P", "16", "-q", "PUBLISH", "bench", "x" * 100],
            capture_output=True, text=True, check=True, timeout=300).stdout
        found = re.findall(r"([0-9.]+) requests per second", out)
        return float(found[-1]), "redis-benchmark, 50 connections, 16 pipelined, 100-byte messages"
    import redis

    client = redis.Redis(port=port)
    started = time.perf_counter()
    for _ in range(messages // 1000):
        pipe = client.pipeline(transaction=False)
        for _ in range(1000):
            pipe.publish("bench", "x" * 100)
        pipe.execute()
    return (messages // 1000 * 1000) / (time.perf_counter() - started), \
        "redis-py, one client, 1000 pipelined, 100-byte messages"


class LeanListener:
    """One listening socket, as cheap as a client can be: the opening handshake, the
    server's frames (unmasked; permessage-deflate inflated), a pong for each ping, and a
    receipt time for each line of the round, taken when its bytes are read."""

    def __init__(self, port: int, path: str, token: str, marker: bytes) -> None:
        self.marker = marker
        self.receipts: list[tuple[int, float]] = []
        self.buffer = b""
        self.open = False
        self.joined = False
        self.inflater: Any = None
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode())

    def wait_joined(self) -> None:
        while not self.joined:
            data = self.sock.recv(65536)
            if not data:
                raise RuntimeError("closed before joining")
            self.feed(data, time.perf_counter())
        self.sock.settimeout(0.0)  # non-blocking from now on

    def feed(self, data: bytes, now: float) -> None:
        buffer = self.buffer + data if self.buffer else data
        if not self.open:
            end = buffer.find(b"\r\n\r\n")
            if end == -1:
                self.buffer = buffer
                return
            head = buffer[:end].decode("latin-1").lower()
            if not head.startswith("http/1.1 101"):
                raise RuntimeError(head.splitlines()[0])
            if "permessage-deflate" in head:
                self.inflater = zlib.decompressobj(-15)
            self.open = True
            buffer = buffer[end + 4:]
        at, size = 0, len(buffer)
        while size - at >= 2:
            first, length = buffer[at], buffer[at + 1] & 0x7F
            start = at + 2
            if length == 126:
                if size - at < 4:
                    break
                length, start = struct.unpack_from("!H", buffer, at + 2)[0], at + 4
            elif length == 127:
                if size - at < 10:
                    break
                length, start = struct.unpack_from("!Q", buffer, at + 2)[0], at + 10
            if size - start < length:
                break
            payload = buffer[start:start + length]
            at = start + length
            opcode = first & 0x0F
            if opcode == 0x9:  # ping: a pong, masked (with a zero key) as a client must
                self.sock.send(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                continue
            if opcode != 0x1:
                continue
            if first & 0x40:  # RSV1: compressed
                payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            found = payload.find(self.marker)
            if found != -1:
                begin = found + len(self.marker)
                self.receipts.append((int(payload[begin:payload.index(b'"', begin)]), now))
            elif not self.joined:
                if b'"type": "joined"' not in payload:
                    raise RuntimeError(f"not joined: {payload[:200]!r}")
                self.joined = True
        self.buffer = buffer[at:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            # a close frame (1000), masked with a zero key, then the connection
            self.sock.send(b"\x88\x82\0\0\0\0\x03\xe8")
        self.sock.close()


def listener_process(port: int, path: str, tokens: list[str], marker: str,
                     pipe: Connection) -> None:
    """A client process: its share of the listeners, read with one epoll loop until the
    round's end. It says "ready" once every socket has joined, a count of receipts every
    100 ms, and at the end its receipts (sequence, time), the p99 of its loop's turns (how
    long bytes that arrive during one wait to be read) and its CPU time."""
    import select

    listeners = [LeanListener(port, path, token, marker.encode()) for token in tokens]
    for listener in listeners:
        listener.wait_joined()
    by_fd = {listener.sock.fileno(): listener for listener in listeners}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    poller.register(pipe.fileno(), select.EPOLLIN)
    lags: list[float] = []
    cpu_before = time.process_time()
    pipe.send(("ready", 0))
    counted = 0
    next_report = time.perf_counter() + 0.1
    running = True
    while running:
        timeout = max(0.0, next_report - time.perf_counter())
        events = poller.poll(min(timeout, 0.01))
        now = time.perf_counter()
        for fd, _ in events:
            found = by_fd.get(fd)
            if found is None:
                running = False
                continue
            try:
                data = found.sock.recv(262144)
            except BlockingIOError:
                continue
            if data:
                found.feed(data, now)
            else:
                poller.unregister(fd)
        # how long a frame read just after this poll waited for the next one
        lags.append(time.perf_counter() - now)
        if now >= next_report:
            counted = sum(len(listener.receipts) for listener in listeners)
            pipe.send(("count", counted))
            next_report = now + 0.1
    cpu = time.process_time() - cpu_before
    pipe.recv()
    for listener in listeners:
        listener.close()
    receipts = [receipt for listener in listeners for receipt in listener.receipts]
    pipe.send(("done", (receipts, _p99(lags), cpu)))


@dataclass
class Round:
    sent: int
    receipts: int
    expected: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    loop_lag_p99_ms: float
    server_cpu: float
    client_cpu: float


async def run_round(url: str, tokens: dict[str, list[str]], args: argparse.Namespace,
                    rate: float, number: int, site: Server) -> Round:
    import websockets

    path = "/ws/rooms/member/bench_rita/"
    ws_url = url.replace("http://", "ws://") + path
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    receipts = 0
    last_receipt = 0.0
    marker = f'"text": "r{number}:'

    async def connect(token: str) -> websockets.ClientConnection:
        conn = await websockets.connect(ws_url, additional_headers={
            "Authorization": f"Bearer {token}"}, max_size=2**20, open_timeout=60,
            ping_interval=None)
        joined = json.loads(await conn.recv())
        if joined.get("type") != "joined":
            raise RuntimeError(f"not joined: {joined}")
        return conn

    async def listen(conn: websockets.ClientConnection) -> None:
        nonlocal receipts, last_receipt
        async for raw in conn:
            now = time.perf_counter()
            text = raw if isinstance(raw, str) else raw.decode()
            at = text.find(marker)
            if at == -1:
                continue
            seq = int(text[at + len(marker):text.index('"', at + len(marker))])
            latencies.append(now - sent_at[seq])
            receipts += 1
            last_receipt = now

    gate = asyncio.Semaphore(50)

    async def gated(token: str) -> websockets.ClientConnection:
        async with gate:
            return await connect(token)

    loop = asyncio.get_running_loop()
    listeners: list[websockets.ClientConnection] = []
    tasks: list[asyncio.Task[None]] = []
    pipes: list[Connection] = []
    processes: list[multiprocessing.process.BaseProcess] = []
    counts: list[int] = []
    if args.client_processes:
        context = multiprocessing.get_context("spawn")
        port = int(url.rsplit(":", 1)[1])
        for share in range(args.client_processes):
            mine, theirs = context.Pipe()
            process = context.Process(target=listener_process, daemon=True, args=(
                port, path, tokens["listeners"][share::args.client_processes], marker, theirs))
            process.start()
            theirs.close()
            pipes.append(mine)
            processes.append(process)
        for pipe in pipes:
            kind, _ = await loop.run_in_executor(None, pipe.recv)
            if kind != "ready":
                raise RuntimeError(f"client process: {kind}")
        counts = [0] * len(pipes)
    else:
        listeners = await asyncio.gather(*(gated(token) for token in tokens["listeners"]))
        tasks = [asyncio.create_task(listen(conn)) for conn in listeners]

    def received() -> int:
        for index, pipe in enumerate(pipes):
            while pipe.poll():
                kind, value = pipe.recv()
                if kind == "count":
                    counts[index] = value
        return sum(counts) if pipes else receipts

    speaker = await connect(tokens["speaker"][0])
    drain = asyncio.create_task(_drain(speaker))
    lags: list[float] = []
    ticking = asyncio.create_task(_ticker(lags))
    count = int(rate * args.seconds)
    cpu_before = site.cpu_seconds()
    started = time.perf_counter()
    for seq in range(count):
        due = started + seq / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at[seq] = time.perf_counter()
        await speaker.send(json.dumps({"type": "say", "text": f"r{number}:{seq}"}))
    expected = count * len(tokens["listeners"])
    deadline = time.perf_counter() + 30
    while received() < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    cpu = site.cpu_seconds() - cpu_before
    ticking.cancel()
    drain.cancel()
    loop_lag = _p99(lags)
    client_cpu = float("nan")
    if pipes:
        client_cpu = 0.0
        for pipe in pipes:
            pipe.send("stop")
        for pipe in pipes:
            while True:
                kind, value = await loop.run_in_executor(None, pipe.recv)
                if kind == "done":
                    break
            their_receipts, their_lag, their_cpu = value
            loop_lag = max(loop_lag, their_lag)
            client_cpu += their_cpu
            for seq, at in their_receipts:
                latencies.append(at - sent_at[seq])
                last_receipt = max(last_receipt, at)
            receipts += len(their_receipts)
        for process in processes:
            process.join(timeout=10)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(conn.close() for conn in [*listeners, speaker]),
                         return_exceptions=True)
    latencies.sort()
    ms = [value * 1000 for value in latencies] or [float("nan")]
    return Round(sent=count, receipts=receipts, expected=expected,
                 seconds=(last_receipt or time.perf_counter()) - started,
                 p50_ms=ms[len(ms) // 2], p99_ms=ms[min(len(ms) - 1, int(len(ms) * 0.99))],
                 max_ms=ms[-1], loop_lag_p99_ms=loop_lag * 1000, server_cpu=cpu,
                 client_cpu=client_cpu)


async def _drain(conn: object) -> None:
    async for _frame in conn:  # type: ignore[attr-defined]
        pass


async def _ticker(lags: list[float]) -> None:
    """How late this process's event loop wakes: the clients' own share of the latency."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - before - 0.01)


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _spread(values: list[float], fmt: str = "{:,.1f}") -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return fmt.format(median)
    return f"{fmt.format(median)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--rates", default="50,10",
                        help="lines a second into the room, one set of rounds for each")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation")
    parser.add_argument("--ws-per-message-deflate", default="false", choices=["true", "false"],
                        help="uvicorn's permessage-deflate (off, as scripts/run and the "
                             "production command have it; `true` measures uvicorn's default)")
    parser.add_argument("--client-processes", type=int, default=2,
                        help="processes holding the listeners (lean clients); 0: websockets "
                             "connections in this process")
    parser.add_argument("--pg-server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--smoke", action="store_true", help="20 clients, 10/s, 3 s, 1 round")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.rates, args.seconds, args.rounds = 20, "10", 3.0, 1
    rates = [float(rate) for rate in args.rates.split(",")]
    command = "benchmarks/rooms/run.py " + " ".join(sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="rooms-bench-") as tmp, \
            server(Path(tmp), args) as site:
        tokens = make_people(site, args.clients)
        publish, publish_how = redis_publish_rate(site.redis_port, 200_000)
        load_before = os.getloadavg()[0]
        results: dict[float, list[Round]] = {}
        number = 0
        for rate in rates:
            for _ in range(args.rounds):
                result = asyncio.run(run_round(site.url, tokens, args, rate, number, site))
                results.setdefault(rate, []).append(result)
                print(f"{rate:g}/s round {number + 1}: {result}", flush=True)
                number += 1
        publish_after, _ = redis_publish_rate(site.redis_port, 200_000)
        load_after = os.getloadavg()[0]

    clients_how = (
        f"lean clients, one epoll loop in each of {args.client_processes} more processes, "
        "receipt time taken when a frame's bytes are read" if args.client_processes else
        "`websockets` connections, asyncio coroutines in one more process")

    lag_label = ("the clients' event loop: a turn (time from reading to reading again), p99, "
                 "ms" if args.client_processes else "the clients' event loop woke late, p99, ms")

    def row(label: str, pick: object, fmt: str = "{:,.1f}") -> str:
        cells = [_spread([float(pick(r)) for r in results[rate]], fmt)  # type: ignore[operator]
                 for rate in rates]
        return f"| {label} | " + " | ".join(cells) + " |\n"

    body = (
        f"\n`.venv/bin/python {command.strip()}` — {args.rounds} round(s) of {args.seconds:g} s "
        f"per rate, medians (range); {machine()}; {today()}; load average {load_before:.2f} "
        f"before, {load_after:.2f} after. One machine, loopback: uvicorn ({args.workers} "
        f"process, `--ws {args.ws}`, permessage-deflate {args.ws_per_message_deflate}), "
        "the Redis Pub/Sub channel layer (channels_redis) on a "
        "redis-server of the run's own, PostgreSQL for the stored lines. "
        f"{args.clients} listening WebSocket clients ({clients_how}, bearer tokens) in one "
        "rights holder's room, and one speaker saying lines on a fixed schedule; latency "
        "from just before a line is sent to its receipt at each client; a round waits at "
        "most 30 s after its last line for the receipts.\n\n"
        "| lines a second into the room | " + " | ".join(f"{rate:g}" for rate in rates)
        + " |\n|---|" + "---:|" * len(rates) + "\n"
        + row("lines said per round", lambda r: r.sent, "{:,.0f}")
        + row("receipts per round", lambda r: r.receipts, "{:,.0f}")
        + row("receipts expected", lambda r: r.expected, "{:,.0f}")
        + row("messages delivered per second", lambda r: r.receipts / r.seconds)
        + row("fan-out latency p50, ms (send to each receipt)", lambda r: r.p50_ms)
        + row("fan-out latency p99, ms", lambda r: r.p99_ms)
        + row("fan-out latency max, ms", lambda r: r.max_ms)
        + row(lag_label, lambda r: r.loop_lag_p99_ms)
        + row("server CPU seconds per round", lambda r: r.server_cpu)
        + row("clients' CPU seconds per round (listener processes)", lambda r: r.client_cpu)
        + f"\nRedis PUBLISH on the same server in the same run: {publish:,.0f} a second "
        f"before the rounds, {publish_after:,.0f} after ({publish_how}). Target: p99 under "
        "200 ms at 50 lines a second into a room of 500.\n\n" + NOTES
    )
    print(body)
    if not args.no_write and not args.smoke:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
