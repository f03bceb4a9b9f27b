"""The peer index's fast path against opentracker, measured with wrk in the same run.

    .venv/bin/python benchmarks/index/run.py                  # 3 rounds of 8 s per measure
    .venv/bin/python benchmarks/index/run.py --rounds 5 --seconds 15
    .venv/bin/python benchmarks/index/run.py --tracker-memory # + opentracker at 1M pairs
    .venv/bin/python benchmarks/index/run.py --py-spy /tmp/pyspy/bin/py-spy  # + profiles
    .venv/bin/python benchmarks/index/run.py --smoke          # small world, 1 round of 2 s

Both sides hold the same world: 1,000 works (torrents), 64 holders (peers)
each. opentracker (the Debian package, whitelist mode, its own config on loopback) is
filled through its own HTTP announce; the index (``python -m peerindex --workers 2``,
uvicorn) through ``peerindex.store`` into a Redis database of the run's own (emptied
first), with credentials minted by ``peerindex.credentials``, 6,400 devices each with an
address in a /24 of its own, sent as X-Forwarded-For (the service trusts it from
loopback, as from its proxy). Rate limits are the service's defaults. The peer timeout is
raised to an hour so that no loaded peer expires during the run (opentracker's own is 45
minutes).

Each round measures, with the same wrk threads, connections and duration, in this order:
opentracker's announce (numwant=50, so each answer is a peer list: its announce figure and
its lookup figure), the index's single-work announce (GET, numwant=50, answered with
sources), its source lookup (n=50), opentracker again, the index's heartbeat, and its
batched announce (POST, one device's 100 holdings with bitfields). A ratio is the index's
rate over the mean of the two opentracker measures of its round; the table gives the
median over the rounds and (min-max). Every request of the index re-announces or looks up
what is already there, so the state is the same from round to round.

Then memory: a million (peer, work) holdings (10,000 devices x 100 of 10,000 works, a
fifth of them partial) loaded through ``peerindex.store`` into a redis-server of its own,
``used_memory`` after minus before, divided by the holdings; optionally opentracker's RSS
growth for a million (peer, torrent) pairs.

Results go into docs/BENCHMARKS.md ("Peer index: fast path against opentracker").
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import redis

from benchmarks.common import machine, today, write_section
from benchmarks.index import fastpath, memory, profile, tracker, wrk

TITLE = "Peer index: fast path against opentracker"
TARGET_RATIO = {"announce": 0.25, "sources": 0.25, "heartbeat": 0.5}
TARGET_P99_MS = 50.0
TARGET_BATCH_HOLDINGS = 100_000

NOTES = """How to read it:

- **The ratios are each round's own.** opentracker is measured twice in every round,
  between the index's measures, so the machine's load (it is shared) weighs on both
  sides. Not equally, though: opentracker is one C process, while the index needs its
  workers, Redis and wrk scheduled together, so on a quiet machine the rates (and perhaps
  the ratios) are higher. The CPU-per-request lines depend much less on the load.
- **opentracker closes every connection** after its answer (no keep-alive), so its rate
  includes a TCP connect and close per request; the index keeps connections open, as
  agents do. That favours the index, not opentracker.
- **Different answers.** opentracker answers 50 peers as 6 bytes each; the index
  answers 50 sources as JSON with their bitfields and checks a credential on every
  request. A single-work announce writes to Redis (one MULTI/EXEC) every time; its
  answer, like a lookup's, comes from the work's holders as one read of Redis found them
  within the last second in that process (docs/INDEX.md, "Remembered answers"), or from a
  new read (two round trips). The rows "answers not remembered" run a second index with
  that switched off, in the same rounds: every lookup reads Redis.
- **The state does not drift.** Every measured request re-announces or looks up what the
  loader stored; after the rounds the run checks that every work still has all its
  holders. The peer timeout is raised to an hour for that reason only.
- **Memory.** Redis keeps a small hash or sorted set in one allocation (a listpack, up
  to 128 entries by its defaults) and a larger one as a hash table or skiplist, several
  times dearer per entry: the encodings above say how many keys of each family were
  which. A world where some works have thousands of holders costs more per holding than
  this uniform one.
"""


@dataclass
class Measure:
    result: wrk.WrkResult
    cpu_seconds: float  # the server's processes (opentracker, or the index's workers)
    redis_cpu_seconds: float  # the Redis server's, during the measure (index only)
    script_seconds: float  # time Redis spent running the index's scripts (EVALSHA)
    script_calls: int
    client_cpu_seconds: float  # wrk's
    reads: int  # lookups' reads of a work's holders in Redis (each begins with one ZCOUNT)


@dataclass
class Round:
    tracker: list[Measure]
    announce: Measure
    sources: Measure
    heartbeat: Measure
    batch: Measure
    # the same two with every lookup reading Redis (PEERMARK_INDEX_SOURCES_CACHE_MS=0)
    announce_fresh: Measure
    sources_fresh: Measure
    # the batched announce with half the connections (the same work, a shorter queue)
    batch_half: Measure

    @property
    def reference(self) -> float:
        return statistics.fmean(m.result.rate for m in self.tracker)


def _spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    middle = statistics.median(values)
    if len(values) == 1:
        return fmt.format(middle)
    return f"{fmt.format(middle)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _redis_cpu(conn: redis.Redis) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _scripts(conn: redis.Redis | None) -> tuple[int, float, int]:
    """EVALSHA calls and the seconds Redis spent in them so far, and ZCOUNT calls (one per
    lookup that reads a work's holders): its command statistics, server-wide, the index
    being the only user of either here."""
    if conn is None:
        return 0, 0.0, 0
    stats = conn.info("commandstats")
    scripts = stats.get("cmdstat_evalsha", {})
    return (int(scripts.get("calls", 0)), float(scripts.get("usec", 0)) / 1e6,
            int(stats.get("cmdstat_zcount", {}).get("calls", 0)))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measure(run: Callable[[], wrk.WrkResult], cpu: Callable[[], float],
             conn: redis.Redis | None) -> Measure:
    cpu_before, client_before = cpu(), _children_cpu()
    redis_before = _redis_cpu(conn) if conn is not None else 0.0
    calls_before, script_before, reads_before = _scripts(conn)
    result = run()
    calls_after, script_after, reads_after = _scripts(conn)
    return Measure(result, cpu() - cpu_before,
                   (_redis_cpu(conn) - redis_before) if conn is not None else 0.0,
                   script_after - script_before, calls_after - calls_before,
                   _children_cpu() - client_before, reads_after - reads_before)


def _check_index(service: fastpath.Service, world: fastpath.World, files: dict[str, Path],
                 holders: int, batch_size: int) -> None:
    """One request of each kind, as the scripts make it, answered as expected."""
    want = min(50, holders - 1)
    token, host = files["devices"].read_text().splitlines()[0].split("\t")
    device = world.devices[0]
    first = device.holdings[0]
    status, answer = fastpath.request(
        f"{service.url}/index/v1/announce?work={world.works[first.work]}&port=7000&numwant=50",
        token=token, host=host)
    sources = answer.get("sources")
    if status != 200 or not isinstance(sources, list) or len(sources) != want:
        raise RuntimeError(f"single-work announce: {status} {str(answer)[:300]}")
    status, answer = fastpath.request(
        f"{service.url}/index/v1/works/{world.works[first.work]}/sources?n=50",
        token=token, host=host)
    sources = answer.get("sources")
    if status != 200 or not isinstance(sources, list) or len(sources) != min(50, holders):
        raise RuntimeError(f"sources: {status} {str(answer)[:300]}")
    networks = {s["url"].rsplit(".", 1)[0] for s in sources}
    if len(networks) != len(sources):
        raise RuntimeError("the loaded sources do not each have a network of their own")
    status, answer = fastpath.request(f"{service.url}/index/v1/heartbeat", token=token,
                                      host=host, method="POST")
    if status != 200:
        raise RuntimeError(f"heartbeat: {status} {answer}")
    b_token, b_host, body = files["batch"].read_text().splitlines()[0].split("\t")
    status, answer = fastpath.request(f"{service.url}/index/v1/announce", token=b_token,
                                      host=b_host, method="POST", body=body.encode())
    if status != 200 or answer.get("holdings") != batch_size:
        raise RuntimeError(f"batched announce: {status} {str(answer)[:300]}")


def _check_tracker(running: tracker.Tracker, hashes: Sequence[bytes], peers: int) -> None:
    total = tracker.peer_count(running.port)
    if total != len(hashes) * peers:
        raise RuntimeError(f"opentracker holds {total} peers, not {len(hashes) * peers}")
    body = tracker.get(running.port, tracker.announce_path(hashes[0], tracker.PEER_PORT_BASE,
                                                           numwant=50))
    if tracker.compact_peers(body) != min(50, peers):
        raise RuntimeError(f"opentracker answered {tracker.compact_peers(body)} peers")


def _check_state(conn: redis.Redis, world: fastpath.World, holders: int) -> None:
    """After the rounds: every loaded holding still there (nothing expired or dropped)."""
    from peerindex import schema

    pipe = conn.pipeline(transaction=False)
    for work in world.works:
        pipe.zcard(schema.holders_key(work))
    counts = pipe.execute()
    if any(int(c) != holders for c in counts):
        raise RuntimeError(f"holders per work after the rounds: {min(counts)}..{max(counts)}")
    # The announces came from each device's own address (X-Forwarded-For), not loopback.
    values = conn.mget([schema.peer_key(d.name) for d in world.devices[:200]])
    for device, value in zip(world.devices[:200], values, strict=True):
        if value is None or f"\x1f{device.host}\x1f".encode() not in value:
            raise RuntimeError(f"{device.name}'s record after the rounds: {value!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="the index's processes")
    parser.add_argument("--works", type=int, default=1000)
    parser.add_argument("--holders", type=int, default=64, help="holders (peers) per work")
    parser.add_argument("--devices", type=int, default=6400)
    parser.add_argument("--batch-devices", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100, help="holdings per batch")
    parser.add_argument("--partial-share", type=float, default=0.2,
                        help="share of holdings with some pieces missing")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12",
                        help="a Redis database of the run's own: it is emptied")
    parser.add_argument("--memory-peers", type=int, default=10_000)
    parser.add_argument("--memory-per-peer", type=int, default=100)
    parser.add_argument("--memory-works", type=int, default=10_000)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measure")
    parser.add_argument("--tracker-memory", action="store_true",
                        help="also opentracker's RSS at the same number of pairs (slow: "
                             "about a million connections)")
    parser.add_argument("--py-spy", default="", metavar="PATH",
                        help="py-spy's binary: after the rounds, profile the index during "
                             "one more run of each of its measures (not counted)")
    parser.add_argument("--smoke", action="store_true",
                        help="a small world, 1 round of 2 s, 10,000 holdings; no write")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.seconds, args.works, args.devices = 1, 2.0, 50, 640
        args.batch_devices, args.memory_peers, args.memory_works = 50, 100, 1000
        args.no_write = True
    command = " ".join(["benchmarks/index/run.py", *sys.argv[1:]])
    args.code_version = _code_version()  # now, before the service starts
    peer_ttl = 3600

    world = fastpath.build(works=args.works, holders=args.holders, devices=args.devices,
                           batch_devices=args.batch_devices, batch_size=args.batch_size,
                           partial_share=args.partial_share)
    conn = redis.Redis.from_url(args.redis_url)
    conn.flushdb()
    loaded = fastpath.load(conn, world, peer_ttl=peer_ttl)
    print(f"index world loaded through peerindex.store in {loaded:.1f} s", flush=True)
    hashes = tracker.info_hashes(args.works, seed="bench")
    ot_port, pi_port = memory.free_port(), memory.free_port()
    rounds: list[Round] = []
    profiles: dict[str, tuple[float, int, list[tuple[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="index-bench-") as tmp:
        work = Path(tmp)
        files = fastpath.write_data(work / "data", world, ttl=peer_ttl * 4)
        listing = work / "hashes.txt"
        listing.write_text("".join(tracker.quoted(h) + "\n" for h in hashes))
        env = fastpath.service_env(args.redis_url, peer_ttl)
        fresh_env = {**env, "PEERMARK_INDEX_SOURCES_CACHE_MS": "0"}
        with tracker.running(work / "opentracker", ot_port, hashes) as ot, \
                fastpath.running(pi_port, args.workers, env, work / "index.log") as pi, \
                fastpath.running(memory.free_port(), args.workers, fresh_env,
                                 work / "index-fresh.log") as fresh:
            took = tracker.fill(ot.port, hashes, args.holders)
            print(f"opentracker filled with {args.works * args.holders:,} peers in "
                  f"{took:.1f} s", flush=True)
            _check_tracker(ot, hashes, args.holders)
            _check_index(pi, world, files, args.holders, args.batch_size)
            load_before = os.getloadavg()[0]

            def shape(script: str, url: str, script_args: list[str], *,
                      connections: int = args.connections) -> Callable[[], wrk.WrkResult]:
                return lambda: wrk.run(url, script, script_args, threads=args.threads,
                                       connections=connections, seconds=args.seconds)

            ot_run = shape("ot_announce.lua", ot.url,
                           [str(listing), str(args.holders), str(tracker.PEER_PORT_BASE)])
            runs = {
                "announce": shape("pi_announce.lua", pi.url,
                                  [str(files["pairs"]), str(files["devices"])]),
                "sources": shape("pi_sources.lua", pi.url,
                                 [str(files["works"]), str(files["devices"])]),
                "heartbeat": shape("pi_heartbeat.lua", pi.url, [str(files["devices"])]),
                "batch": shape("pi_batch.lua", pi.url, [str(files["batch"])]),
            }
            batch_half = shape("pi_batch.lua", pi.url, [str(files["batch"])],
                               connections=max(args.threads, args.connections // 2))
            fresh_runs = {
                "announce": shape("pi_announce.lua", fresh.url,
                                  [str(files["pairs"]), str(files["devices"])]),
                "sources": shape("pi_sources.lua", fresh.url,
                                 [str(files["works"]), str(files["devices"])]),
            }

            def ot_cpu() -> float:
                return _process_cpu(ot.process.pid)

            for number in range(args.rounds):
                first = _measure(ot_run, ot_cpu, None)
                announce = _measure(runs["announce"], pi.cpu_seconds, conn)
                sources = _measure(runs["sources"], pi.cpu_seconds, conn)
                second = _measure(ot_run, ot_cpu, None)
                heartbeat = _measure(runs["heartbeat"], pi.cpu_seconds, conn)
                batch = _measure(runs["batch"], pi.cpu_seconds, conn)
                announce_fresh = _measure(fresh_runs["announce"], fresh.cpu_seconds, conn)
                sources_fresh = _measure(fresh_runs["sources"], fresh.cpu_seconds, conn)
                half = _measure(batch_half, pi.cpu_seconds, conn)
                done = Round([first, second], announce, sources, heartbeat, batch,
                             announce_fresh, sources_fresh, half)
                rounds.append(done)
                print(f"round {number + 1}: opentracker {first.result.rate:,.0f}/s and "
                      f"{second.result.rate:,.0f}/s; index announce {announce.result.rate:,.0f}"
                      f"/s, sources {sources.result.rate:,.0f}/s, heartbeat "
                      f"{heartbeat.result.rate:,.0f}/s, batch {batch.result.rate:,.0f}/s "
                      f"(x{args.batch_size} holdings); not remembered: announce "
                      f"{announce_fresh.result.rate:,.0f}/s, sources "
                      f"{sources_fresh.result.rate:,.0f}/s", flush=True)
            load_after = os.getloadavg()[0]
            if args.py_spy:
                for kind, runner in runs.items():
                    raw = work / f"profile-{kind}.txt"
                    spy = profile.record(args.py_spy, pi.process.pid, args.seconds + 1, raw)
                    time.sleep(0.5)
                    rate = runner().rate
                    spy.wait(timeout=args.seconds + 60)
                    samples, groups = profile.summary(raw)
                    profiles[kind] = (rate, samples, groups)
                    print(f"profile of {kind}: {rate:,.0f}/s, {samples} samples", flush=True)
            _check_state(conn, world, args.holders)
    conn.flushdb()

    mem = None if args.no_memory else memory.redis_memory(
        peers=args.memory_peers, per_peer=args.memory_per_peer, works=args.memory_works,
        partial_share=args.partial_share)
    ot_mem = None
    if args.tracker_memory:
        with tempfile.TemporaryDirectory(prefix="index-bench-ot-") as tmp:
            ot_mem = memory.tracker_memory(torrents=args.memory_per_peer,
                                           peers=args.memory_peers, work=Path(tmp),
                                           port=memory.free_port())

    body = _report(args, command, rounds, mem, ot_mem, load_before, load_after, profiles)
    print(body)
    if not args.no_write:
        write_section(TITLE, body)


def _code_version() -> str:
    """The commit measured, and whether the index's code differed from it."""
    import subprocess

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True,
                              check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "peerindex")
    return f"commit {commit}" + (" with uncommitted changes in peerindex/" if dirty else "")


def _report(args: argparse.Namespace, command: str, rounds: list[Round],
            mem: memory.RedisMemory | None, ot_mem: memory.TrackerMemory | None,
            load_before: float, load_after: float,
            profiles: dict[str, tuple[float, int, list[tuple[str, float]]]]) -> str:
    def col(pick: Callable[[Round], float], fmt: str = "{:,.0f}") -> str:
        return _spread([pick(r) for r in rounds], fmt)

    def errors(pick: Callable[[Round], Measure]) -> str:
        bad = sum(pick(r).result.bad_status for r in rounds)
        sock = sum(pick(r).result.errors for r in rounds)
        return f"{bad} / {sock}"

    def row(label: str, kind: str, pick: Callable[[Round], Measure], target: str,
            ratio: bool = True) -> str:
        def per_request(seconds: Callable[[Measure], float]) -> str:
            return col(lambda r: 1e6 * seconds(pick(r)) / max(1, pick(r).result.requests),
                       "{:.0f}")

        ratio_cell = col(lambda r: pick(r).result.rate / r.reference, "{:.2f}") if ratio else ""
        reads = col(lambda r: pick(r).reads / max(1, pick(r).result.requests), "{:.2f}")
        redis_cell = (f"{per_request(lambda m: m.redis_cpu_seconds)} "
                      f"| {per_request(lambda m: m.script_seconds)} | {reads}"
                      if kind != "ot" else " |  | ")
        return (f"| {label} | {col(lambda r: pick(r).result.rate)} | {ratio_cell} "
                f"| {col(lambda r: pick(r).result.p50_ms, '{:.2f}')} "
                f"| {col(lambda r: pick(r).result.p99_ms, '{:.2f}')} "
                f"| {per_request(lambda m: m.cpu_seconds)} | {redis_cell} "
                f"| {per_request(lambda m: m.client_cpu_seconds)} "
                f"| {errors(pick)} | {target} |\n")

    n = args.rounds
    table = (
        "| measure (requests a second) | rate, median (min-max) | ratio to opentracker "
        "| p50 ms | p99 ms | server CPU µs / request | Redis CPU µs / request "
        "| Redis time in the index's scripts, µs / request (wall) "
        "| reads of a work's holders in Redis / request | wrk CPU µs / request "
        "| non-2xx / socket errors | target |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
        + row("opentracker announce, numwant=50 (its announce and its lookup)", "ot",
              lambda r: r.tracker[0], "reference", ratio=False)
        + row("opentracker again, mid-round", "ot", lambda r: r.tracker[1], "reference",
              ratio=False)
        + row("index: single-work announce, GET, numwant=50", "pi", lambda r: r.announce,
              f"ratio ≥ {TARGET_RATIO['announce']}, p99 < {TARGET_P99_MS:g} ms")
        + row("index: source lookup, n=50", "pi", lambda r: r.sources,
              f"ratio ≥ {TARGET_RATIO['sources']}, p99 < {TARGET_P99_MS:g} ms")
        + row("index: heartbeat", "pi", lambda r: r.heartbeat,
              f"ratio ≥ {TARGET_RATIO['heartbeat']}, p99 < {TARGET_P99_MS:g} ms")
        + row(f"index: batched announce, {args.batch_size} holdings a request", "pi",
              lambda r: r.batch, f"p99 < {TARGET_P99_MS:g} ms")
        + row("secondary: single-work announce, answers not remembered "
              "(`PEERMARK_INDEX_SOURCES_CACHE_MS=0`)", "pi", lambda r: r.announce_fresh,
              "for comparison")
        + row("secondary: source lookup, answers not remembered", "pi",
              lambda r: r.sources_fresh, "for comparison")
        + row(f"secondary: batched announce, {max(args.threads, args.connections // 2)} "
              "connections", "pi", lambda r: r.batch_half, "for comparison", ratio=False)
    )
    holdings = [r.batch.result.rate * args.batch_size for r in rounds]
    verdicts = []
    for kind, label in (("announce", "announces"), ("sources", "lookups"),
                        ("heartbeat", "heartbeats")):
        measured = statistics.median(getattr(r, kind).result.rate / r.reference for r in rounds)
        p99 = statistics.median(getattr(r, kind).result.p99_ms for r in rounds)
        met = measured >= TARGET_RATIO[kind] and p99 < TARGET_P99_MS
        verdicts.append(f"- {label}: {measured:.2f} of opentracker's rate (target "
                        f"{TARGET_RATIO[kind]}), p99 {p99:.1f} ms: "
                        f"**{'met' if met else 'missed'}**")
    cores = os.cpu_count() or 1
    ot_cpu = statistics.median(
        statistics.fmean(m.cpu_seconds / max(1, m.result.requests) for m in r.tracker)
        for r in rounds)
    ceilings = [
        f"- opentracker: {ot_cpu * 1e6:.0f} µs of CPU per announce (one process, so one "
        f"core): at most about {1 / ot_cpu:,.0f} a second" if ot_cpu else "- opentracker: -"]
    for kind, label in (("announce", "single-work announce"), ("sources", "source lookup"),
                        ("heartbeat", "heartbeat"), ("batch", "batched announce")):
        server = statistics.median(getattr(r, kind).cpu_seconds
                                   / max(1, getattr(r, kind).result.requests) for r in rounds)
        in_redis = statistics.median(getattr(r, kind).redis_cpu_seconds
                                     / max(1, getattr(r, kind).result.requests) for r in rounds)
        most = cores / (server + in_redis) if server + in_redis else 0.0
        ratio = f", {most * ot_cpu:.2f} of opentracker's" if ot_cpu else ""
        ceilings.append(f"- index {label}: {server * 1e6:.0f} µs (service) + "
                        f"{in_redis * 1e6:.0f} µs (Redis) of CPU per request: at most about "
                        f"{most:,.0f} a second on {cores} otherwise idle cores{ratio}")
    batch_p99 = statistics.median(r.batch.result.p99_ms for r in rounds)
    batch_met = statistics.median(holdings) >= TARGET_BATCH_HOLDINGS and batch_p99 < 50
    verdicts.append(f"- batched announce: {_spread(holdings)} holdings updated a second "
                    f"(target {TARGET_BATCH_HOLDINGS:,}), p99 {batch_p99:.1f} ms: "
                    f"**{'met' if batch_met else 'missed'}**")
    parts = [
        f"`.venv/bin/python {command}` at {args.code_version} — {n} round(s), each wrk run "
        f"{args.seconds:g} s, "
        f"{args.threads} threads, {args.connections} connections, `--latency`; medians "
        f"(min-max) over the rounds; {machine()}; {today()}; load average "
        f"{load_before:.2f} before the rounds, {load_after:.2f} after (the machine is shared; "
        "opentracker is measured twice in every round, between the index's measures, and "
        "each ratio is to its own round's opentracker).\n",
        f"World: {args.works:,} works (torrents) x {args.holders} holders (peers) on both "
        f"sides; the index's {args.devices:,} devices each hold "
        f"{args.works * args.holders // args.devices} works, a {args.partial_share:.0%} share "
        "of holdings partial (random half to nearly all of 8 to 2,048 pieces), each device "
        "in a /24 of its own (X-Forwarded-For from loopback); batched announces by "
        f"{args.batch_devices:,} other devices over "
        f"{max(args.batch_devices, args.batch_size):,} other works, re-announcing what "
        "they hold. opentracker "
        "(Debian 0.0~git20210823, whitelist mode, one process) answers one request per "
        "connection and closes it, so its rate includes a TCP connect per request and every "
        "answer counts as a wrk read error (not shown); the index keeps connections alive. "
        f"The index: `python -m peerindex --workers {args.workers}` (uvicorn, uvloop, "
        "httptools), default rate limits, peer timeout 3,600 s, Redis "
        f"`{args.redis_url}` (the shared server of the machine: its CPU figures include "
        "anyone else's use of it during the run).\n",
        table,
        "Targets (docs/INDEX.md):\n\n" + "\n".join(verdicts) + "\n",
        "What the CPU each request costs would allow on this machine if nothing else ran "
        "on it (the machine's cores over CPU seconds per request, wrk's own left out; the "
        "steadier figure on a shared machine, where rates move with everyone else's load):"
        "\n\n" + "\n".join(ceilings) + "\n",
    ]
    if mem is not None:
        def encodings_of(label: str) -> str:
            return ", ".join(f"{key.split(': ', 1)[1]} {count:,}"
                             for key, count in sorted(mem.encodings.items())
                             if key.startswith(label + ": "))

        family_rows = "".join(
            f"| {label} | {keys:,} | {encodings_of(label)} | {size / mem.holdings:.1f} |\n"
            for label, (keys, size) in mem.families.items())
        parts.append(
            f"Memory: {mem.holdings:,} holdings ({mem.peers:,} devices x "
            f"{mem.holdings // mem.peers} of {mem.works:,} works, {mem.partial_share:.0%} "
            f"partial) loaded through `peerindex.store` into a redis-server {mem.version} of "
            "the run's "
            f"own in {mem.load_seconds:.1f} s: used_memory {mem.used_before / 2**20:,.1f} MiB "
            f"before, {mem.used_after / 2**20:,.1f} MiB after (RSS "
            f"{mem.rss_after / 2**20:,.1f} MiB): **{mem.per_holding:.1f} bytes per (peer, "
            "work) holding**. By key family (MEMORY USAGE, exact):\n\n"
            "| keys | count | encodings | bytes per holding |\n|---|---:|---|---:|\n"
            + family_rows)
    if ot_mem is not None:
        parts.append(
            f"opentracker (optional measure, `--tracker-memory`): {ot_mem.pairs:,} (peer, "
            f"torrent) pairs ({args.memory_per_peer} torrents x {args.memory_peers:,} peers) "
            f"announced in {ot_mem.load_seconds:.0f} s; RSS {ot_mem.rss_before_kib:,} KiB "
            f"before, {ot_mem.rss_after_kib:,} KiB after: {ot_mem.per_pair:.1f} bytes per "
            "pair (it keeps an address, a port and flags per peer; no bitfields, no "
            "per-peer record).\n")
    if profiles:
        kinds = list(profiles)
        labels: list[str] = []
        for kind in kinds:
            labels += [label for label, _ in profiles[kind][2] if label not in labels]
        shares = {k: dict(profiles[k][2]) for k in kinds}
        parts.append(
            f"Where the index's time goes: `py-spy record --subprocesses --rate 200` on the "
            f"service during one more {args.seconds:g} s run of each measure after the rounds "
            "(not counted above), busy samples of both workers by innermost frame:\n\n"
            "| innermost frame in | " + " | ".join(kinds) + " |\n|---|"
            + "---:|" * len(kinds) + "\n"
            + "".join(f"| {label} | " + " | ".join(f"{shares[k].get(label, 0.0):.0%}"
                                                   for k in kinds) + " |\n"
                      for label in labels)
            + "| (samples; requests a second while sampled) | "
            + " | ".join(f"{profiles[k][1]:,}; {profiles[k][0]:,.0f}" for k in kinds)
            + " |\n")
    parts.append(NOTES)
    return "\n" + "\n".join(parts)


if __name__ == "__main__":
    main()
