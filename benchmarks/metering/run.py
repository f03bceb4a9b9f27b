"""Accepted orders per second, end to end: HTTP ingestion to the ledger of metered events.

    .venv/bin/python benchmarks/metering/run.py [--orders 40000] [--clients 8] [--batch 200]

8 client processes POST pre-signed orders in batches to ``/api/v1/metering/orders/``
(gunicorn); the platform verifies each order's signature against its licence's device
key, appends the accepted ones to the Redis stream, and a real Celery worker flushes the
stream into PostgreSQL. The clock stops when the database holds every accepted order, so
the rate is what reaches the source of truth, not what a queue swallowed; the run then
checks that nothing was lost (accepted == recorded).

Beside it, in the same run: Redis's own XADD rate for the same entries (8 processes,
pipelined) and the raw Ed25519 verify rate of the same orders (one process per core),
as ratios. Target on the 2-core reference machine: at least 2,000 accepted orders/s.

It makes (and drops) its own database, ``peermark_bench_metering``, on ``BENCH_PG``
(default ``postgres://postgres@127.0.0.1:5432``) and uses Redis database 3 of
``BENCH_REDIS`` (default ``redis://127.0.0.1:6379``), which it empties.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import ROOT, machine, median, today, write_section

SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379") + "/3"
DB_NAME = "peermark_bench_metering"


def _environment(data_dir: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": f"{SERVER}/{DB_NAME}", "REDIS_URL": REDIS,
        "PEERMARK_DATA_DIR": data_dir, "PEERMARK_CELERY_EAGER": "false",
        "PEERMARK_LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "exchange.settings",
        "PEERMARK_PIECE_SIZE": str(64 * 1024),
    }
    os.environ.update(env)
    return env


def _recreate() -> None:
    import psycopg
    import redis

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    redis.Redis.from_url(REDIS).flushdb()


def _world(clients: int, orders: int, licences: int, tag: int) -> dict[str, Any]:
    """Users, a packaged work, bought licences, serving devices, and the signed orders
    (``tag`` keeps each run's people and licences apart)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections, transaction

    if tag == 0:
        call_command("migrate", verbosity=0)
    from PIL import Image

    from exchange.accounts.models import Role, User
    from exchange.accounts.services import api_token_create
    from exchange.catalogue.services import work_process, work_register
    from exchange.ledger.models import AccountKind
    from exchange.ledger.services import Leg, account_get_or_create, ledger_post, platform_account
    from exchange.licensing.services import device_register, package_manifest
    from exchange.purchases.services import purchase_create
    from licensing.core import DeviceKeys, sign_order

    def device_for(user: User) -> DeviceKeys:
        keys = DeviceKeys.generate()
        public = keys.public.to_b64url()
        device_register(user=user, name="bench", signing_key=public["sig"], kem_key=public["kem"])
        return keys

    rita = User.objects.create_user(f"rita{tag}", password="x", role=Role.RIGHTS_HOLDER)
    out = io.BytesIO()
    Image.effect_noise((800, 800), 60).convert("RGB").save(out, format="PNG")
    png = out.getvalue()
    work = work_register(owner=rita, title="Bench", description="", upload=io.BytesIO(png),
                         upload_size=len(png), original_filename="b.png", price_minor=100,
                         currency="EUR", allowed_uses=["view"], licence_days=30,
                         byte_allowance_multiple=100)
    work = work_process(work_id=work.pk)  # in this process: no worker needed for setup
    manifest = package_manifest(work.package)
    buyer = User.objects.create_user(f"buyer{tag}", password="x", role=Role.BUYER)
    buyer_keys = device_for(buyer)
    clearing = platform_account(kind=AccountKind.CLEARING, currency="EUR")
    wallet = account_get_or_create(kind=AccountKind.WALLET, owner=buyer, currency="EUR")
    with transaction.atomic():
        ledger_post(kind="topup", reference=f"bench-{tag}", memo="",
                    legs=[Leg(clearing, -10**9), Leg(wallet, 10**9)])
    licence_ids = [str(purchase_create(buyer=buyer, work_id=work.pk,
                                       device_id=buyer_keys.device_id).licence_id)
                   for _ in range(licences)]
    now = int(time.time())
    plan = []
    for index in range(clients):
        peer = User.objects.create_user(f"peer{tag}-{index}", password="x", role=Role.BUYER)
        peer_keys = device_for(peer)
        token = api_token_create(user=peer, name="bench").raw
        tokens = []
        for n in range(orders // clients):
            piece = n % manifest.piece_count
            tokens.append(sign_order(buyer_keys, licence_id=licence_ids[n % licences],
                                     peer_id=peer_keys.device_id, piece=piece,
                                     byte_count=manifest.piece_length(piece), issued_at=now))
        plan.append({"token": token, "orders": tokens, "device": peer_keys.device_id})
    connections.close_all()
    return {"plan": plan, "licences": licence_ids,
            "verify_key": buyer_keys.public.signing}


# --- loads --------------------------------------------------------------------------------


def _submit(_index: int, base: str, batch: int, start: Any, out: Any, plan: dict[str, Any]) -> None:
    import httpx

    orders = plan["orders"]
    accepted = 0
    with httpx.Client(base_url=base, timeout=60,
                      headers={"Authorization": f"Bearer {plan['token']}"}) as client:
        start.wait()
        for offset in range(0, len(orders), batch):
            response = client.post("/api/v1/metering/orders/",
                                   json={"orders": orders[offset:offset + batch]})
            response.raise_for_status()
            accepted += response.json()["accepted"]
    out.put(accepted)


def _xadd(_index: int, count: int, start: Any, out: Any, entry: bytes) -> None:
    import redis

    conn = redis.Redis.from_url(REDIS)
    start.wait()
    pipe = conn.pipeline(transaction=False)
    for n in range(count):
        pipe.xadd("bench:xadd", {"o": entry})
        if n % 200 == 199:
            pipe.execute()
    pipe.execute()
    out.put(count)


def _verify(_index: int, count: int, start: Any, out: Any, key: bytes,
            tokens: list[str]) -> None:
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public = Ed25519PublicKey.from_public_bytes(key)
    prepared = []
    for token in tokens:
        head, body, sig = token.split(".")
        prepared.append((base64.urlsafe_b64decode(sig + "=="), f"{head}.{body}".encode()))
    start.wait()
    done = 0
    for n in range(count):
        signature, message = prepared[n % len(prepared)]
        try:
            public.verify(signature, message)
        except InvalidSignature:
            raise SystemExit("a benchmark order does not verify") from None
        done += 1
    out.put(done)


def _parallel(target: Any, procs: int, *args: Any) -> tuple[int, float]:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(procs + 1)
    out = ctx.Queue()
    workers = [ctx.Process(target=target, args=(i, *args[:1], start, out, *args[1:]))
               for i in range(procs)]
    for worker in workers:
        worker.start()
    start.wait(timeout=300)
    began = time.monotonic()
    total = sum(out.get(timeout=600) for _ in workers)
    elapsed = time.monotonic() - began
    for worker in workers:
        worker.join(timeout=60)
    return total, elapsed


def _recorded() -> int:
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM metering_meteredorder").fetchone()
    return int(row[0]) if row else 0


def _end_to_end(base: str, clients: int, batch: int, plan: list[dict[str, Any]]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(clients + 1)
    out = ctx.Queue()
    workers = [ctx.Process(target=_submit, args=(i, base, batch, start, out, plan[i]))
               for i in range(clients)]
    for worker in workers:
        worker.start()
    before = _recorded()
    start.wait(timeout=300)
    began = time.monotonic()
    accepted = sum(out.get(timeout=900) for _ in workers)
    ingested = time.monotonic() - began
    for worker in workers:
        worker.join(timeout=60)
        if worker.exitcode:
            raise RuntimeError("a submitting client failed")
    deadline = time.monotonic() + 600
    while _recorded() - before < accepted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_recorded() - before} of {accepted} orders reached the "
                               "database")
        time.sleep(0.05)
    elapsed = time.monotonic() - began
    return {"accepted": accepted, "recorded": _recorded() - before, "elapsed": elapsed,
            "ingest_only": ingested, "rate": accepted / elapsed}


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=40_000, help="orders per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=200, help="orders per request")
    parser.add_argument("--licences", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import httpx

    with tempfile.TemporaryDirectory(prefix="peermark-bench-") as data_dir:
        env = _environment(data_dir)
        _recreate()
        print("preparing licences and signed orders ...", flush=True)
        worlds = [_world(args.clients, args.orders, args.licences, run)
                  for run in range(args.runs)]
        port = 18_500 + os.getpid() % 400
        base = f"http://127.0.0.1:{port}"
        logs = Path(data_dir)
        server = _start([sys.executable, "-m", "gunicorn", "exchange.wsgi:application", "--bind",
                         f"127.0.0.1:{port}", "--workers", str(args.workers), "--threads", "2",
                         "--log-level", "warning"], env, logs / "server.log")
        worker = _start([sys.executable, "-m", "celery", "-A", "exchange", "worker", "--pool",
                         "solo", "--loglevel", "WARNING", "--without-heartbeat",
                         "--without-gossip", "--without-mingle"], env, logs / "worker.log")
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            results: dict[str, list[float]] = {"e2e": [], "xadd": [], "verify": []}
            lost = 0
            for run, world in enumerate(worlds):
                measured = _end_to_end(base, args.clients, args.batch, world["plan"])
                lost += measured["accepted"] - measured["recorded"]
                entry = json.dumps({"licence": world["licences"][0], "nonce": "x" * 22,
                                    "device": "d" * 43, "user": 1, "piece": 1,
                                    "bytes": 65552, "iat": 1}).encode()
                xadd_count, xadd_time = _parallel(_xadd, args.clients, measured["accepted"]
                                                  // args.clients, entry)
                tokens = world["plan"][0]["orders"][:500]
                cores = os.cpu_count() or 1
                verified, verify_time = _parallel(_verify, cores, 20_000,
                                                  world["verify_key"], tokens)
                results["e2e"].append(measured["rate"])
                results["xadd"].append(xadd_count / xadd_time)
                results["verify"].append(verified / verify_time)
                print(f"run {run + 1}: {measured['accepted']:,} accepted, "
                      f"{measured['recorded']:,} recorded in {measured['elapsed']:.1f} s "
                      f"(ingest alone {measured['ingest_only']:.1f} s): "
                      f"{measured['rate']:,.0f}/s; XADD {results['xadd'][-1]:,.0f}/s; "
                      f"Ed25519 verify {results['verify'][-1]:,.0f}/s", flush=True)
        finally:
            server.terminate()
            worker.terminate()
            server.wait(timeout=30)
            worker.wait(timeout=30)
    e2e, xadd, verify = (median(results[k]) for k in ("e2e", "xadd", "verify"))
    table = (
        "| measure (same run) | median per second | ratio of end to end to it | target |\n"
        "|---|---|---|---|\n"
        f"| accepted orders, HTTP ingestion to the ledger ({args.clients} clients, batches of "
        f"{args.batch}) | {e2e:,.0f} | 1 | ≥ 2,000/s |\n"
        f"| Redis XADD of the same entries ({args.clients} processes, pipelined) | {xadd:,.0f} "
        f"| {e2e / xadd:.3f} | |\n"
        f"| raw Ed25519 verify of the same orders ({os.cpu_count()} processes) | {verify:,.0f} "
        f"| {e2e / verify:.3f} | |\n"
    )
    print(table)
    print(f"orders lost (accepted but not recorded): {lost}")
    if not args.no_write:
        write_section("Metering", (
            f"`{Path(sys.argv[0]).as_posix()}` — {args.runs} runs of {args.orders:,} orders, "
            f"medians; {machine()}; {today()}. PostgreSQL, Redis, gunicorn ({args.workers} "
            "workers) and one Celery worker on the same machine.\n\n"
            "End to end means from the first request until the database holds every accepted "
            "order (HTTP, signature check against the licence's device key, the Redis stream, "
            "the Celery flush into PostgreSQL under the (licence, nonce) unique key, the "
            "allowance counters).\n\n" + table +
            f"\nNothing lost: {lost} orders accepted but not recorded over all runs.\n"))


if __name__ == "__main__":
    main()
