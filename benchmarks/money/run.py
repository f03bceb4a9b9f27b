"""Purchases per second on PostgreSQL with 8 concurrent clients, beside a plain UPDATE.

    .venv/bin/python benchmarks/money/run.py [--seconds 5] [--runs 3] [--clients 8]

Three measurements, interleaved in each run so that the shared machine's noise hits
them alike, reported as medians and as ratios:

- baseline: each client runs autocommit ``UPDATE bench_counter SET n = n + 1`` on its own
  row through psycopg: the cheapest write transaction this database can do;
- service: each client (a process) calls ``purchase_create`` in a loop, its own buyer
  and wallet: wallet debit into a new escrow account, licence signed and HPKE-wrapped,
  invoice, audit row, all in one transaction;
- API: each client POSTs ``/api/v1/purchases/`` with a fresh Idempotency-Key over
  HTTP/1.1 keep-alive to gunicorn serving the platform.

It makes (and drops) its own database, ``peermark_bench``, on the server named by
``BENCH_PG`` (default ``postgres://postgres@127.0.0.1:5432``). Targets: 300/s through
the service layer, 150/s through the API, and at least a tenth of the baseline.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.common import ROOT, machine, median, today, write_section

SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "peermark_bench"


def _prepare_environment(data_dir: str) -> None:
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB_NAME}"
    os.environ["PEERMARK_DATA_DIR"] = data_dir
    os.environ["PEERMARK_CELERY_EAGER"] = "true"
    os.environ.pop("REDIS_URL", None)
    os.environ["PEERMARK_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "exchange.settings"


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_counter (id int PRIMARY KEY, n bigint NOT NULL)")
        conn.execute("INSERT INTO bench_counter SELECT g, 0 FROM generate_series(1, 64) g")


def _setup_world(clients: int) -> dict[str, object]:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections, transaction

    call_command("migrate", verbosity=0)
    from exchange.accounts.models import Role, User
    from exchange.accounts.services import api_token_create
    from exchange.catalogue.models import Work
    from exchange.catalogue.services import work_register
    from exchange.ledger.models import AccountKind
    from exchange.ledger.services import Leg, account_get_or_create, ledger_post, platform_account
    from licensing.core.device import DeviceKeys
    from licensing.services import device_register

    rita = User.objects.create_user("rita", password="x", role=Role.RIGHTS_HOLDER)
    data = os.urandom(256 * 1024)
    png = _png()
    work = work_register(
        owner=rita, title="Bench", description="", upload=io.BytesIO(png), upload_size=len(png),
        original_filename="b.png", price_minor=100, currency="EUR", allowed_uses=["view"],
        licence_days=30, byte_allowance_multiple=2,
    )
    del data
    work = Work.objects.get(pk=work.pk)
    assert work.status == "ready", work.status
    buyers = []
    clearing = platform_account(kind=AccountKind.CLEARING, currency="EUR")
    for index in range(clients):
        buyer = User.objects.create_user(f"buyer{index}", password="x", role=Role.BUYER)
        wallet = account_get_or_create(kind=AccountKind.WALLET, owner=buyer, currency="EUR")
        with transaction.atomic():
            ledger_post(kind="topup", reference=f"bench-{index}", memo="bench",
                        legs=[Leg(clearing, -10**12), Leg(wallet, 10**12)])
        keys = DeviceKeys.generate()
        public = keys.public.to_b64url()
        device = device_register(user=buyer, name="bench", signing_key=public["sig"],
                                 kem_key=public["kem"])
        token = api_token_create(user=buyer, name="bench").raw
        buyers.append((buyer.pk, device.pk, token))
    connections.close_all()
    return {"work": str(work.pk), "buyers": buyers}


def _png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.effect_noise((512, 512), 40).convert("RGB").save(out, format="PNG")
    return out.getvalue()


# --- the three loads (each runs in its own process) ---------------------------------------


def _baseline_client(index: int, seconds: float, start: mp.Barrier, out: mp.Queue) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        start.wait()
        done, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            conn.execute("UPDATE bench_counter SET n = n + 1 WHERE id = %s", (index + 1,))
            done += 1
    out.put(done)


def _service_client(index: int, seconds: float, start: mp.Barrier, out: mp.Queue,
                    world: dict[str, object]) -> None:
    import django

    django.setup()
    from exchange.accounts.models import User
    from exchange.purchases.services import purchase_create

    buyer_id, device_id, _token = world["buyers"][index]  # type: ignore[index]
    buyer = User.objects.get(pk=buyer_id)
    purchase_create(buyer=buyer, work_id=world["work"], device_id=device_id)  # warm up
    start.wait()
    done, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        purchase_create(buyer=buyer, work_id=world["work"], device_id=device_id)
        done += 1
    out.put(done)


def _api_client(index: int, seconds: float, start: mp.Barrier, out: mp.Queue,
                world: dict[str, object], base: str) -> None:
    import httpx

    _buyer, device_id, token = world["buyers"][index]  # type: ignore[index]
    body = {"work": world["work"], "device": device_id}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"},
                      timeout=30) as client:
        client.post("/api/v1/purchases/", json=body,
                    headers={"Idempotency-Key": uuid.uuid4().hex}).raise_for_status()
        start.wait()
        done, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            response = client.post("/api/v1/purchases/", json=body,
                                   headers={"Idempotency-Key": uuid.uuid4().hex})
            if response.status_code != 201:
                raise RuntimeError(f"purchase failed: {response.status_code} {response.text}")
            done += 1
    out.put(done)


def _measure(target: object, clients: int, seconds: float, *extra: object) -> float:
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(clients + 1)
    out: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(i, seconds, start, out, *extra))
             for i in range(clients)]
    for proc in procs:
        proc.start()
    start.wait(timeout=120)
    began = time.monotonic()
    total = sum(out.get(timeout=seconds + 120) for _ in procs)
    elapsed = max(time.monotonic() - began, seconds)
    for proc in procs:
        proc.join(timeout=30)
        if proc.exitcode:
            raise RuntimeError(f"a client failed with exit code {proc.exitcode}")
    return total / elapsed


def _start_server(port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "exchange.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync",
         "--keep-alive", "30", "--log-level", "warning"],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=os.environ.copy(),
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"the server did not start; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8, help="gunicorn worker processes")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="peermark-bench-") as data_dir:
        _prepare_environment(data_dir)
        _recreate_database()
        world = _setup_world(args.clients)
        port = 18_000 + os.getpid() % 1000
        server = _start_server(port, args.workers, Path(data_dir) / "server.log")
        rates: dict[str, list[float]] = {"baseline": [], "service": [], "api": []}
        try:
            for run in range(args.runs):
                rates["baseline"].append(_measure(_baseline_client, args.clients, args.seconds))
                rates["service"].append(
                    _measure(_service_client, args.clients, args.seconds, world))
                rates["api"].append(_measure(_api_client, args.clients, args.seconds, world,
                                             f"http://127.0.0.1:{port}"))
                print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s"
                                                      for k, v in rates.items()), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    base, service, api = (median(rates[k]) for k in ("baseline", "service", "api"))
    table = (
        "| load (8 concurrent clients) | median per second | ratio to UPDATE | target |\n"
        "|---|---|---|---|\n"
        f"| plain single-row UPDATE (psycopg, autocommit) | {base:,.0f} | 1 | |\n"
        f"| purchase through the service layer | {service:,.0f} | {service / base:.3f} "
        f"| ≥ 300/s and ≥ 0.1 |\n"
        f"| purchase through the HTTP API (gunicorn, {args.workers} workers) | {api:,.0f} "
        f"| {api / base:.3f} | ≥ 150/s |\n"
    )
    print(table)
    if not args.no_write:
        write_section("Purchases (money)", (
            f"`{Path(sys.argv[0]).as_posix()}` — {args.runs} runs of {args.seconds:.0f} s each, "
            f"medians; {machine()}; {today()}. PostgreSQL on the same machine.\n\n"
            "Each purchase: wallet row locked and debited into a new escrow account, "
            "licence signed (Ed25519) with the content and watermark keys HPKE-wrapped to the "
            "device, invoice and audit rows, one transaction.\n\n" + table))


if __name__ == "__main__":
    main()
