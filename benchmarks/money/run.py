"""Purchases per second on PostgreSQL with 8 concurrent clients, beside a plain UPDATE.

    .venv/bin/python benchmarks/money/run.py [--seconds 5] [--runs 3] [--clients 8]
        [--only service --only api] [--no-write]

Four measurements, interleaved in each run so that the shared machine's noise hits
them alike, reported as medians and as ratios:

- baseline: each client runs autocommit ``UPDATE bench_counter SET n = n + 1`` on its own
  row through psycopg: the cheapest write transaction this database can do;
- floor: each client replays from psycopg the statements one real purchase sent (its
  reads, then its writes in a transaction), with fresh ids: the database's own share of
  a sale, which no client code can beat;
- service: each client (a process) calls ``purchase_create`` in a loop, its own buyer
  and wallet: wallet debited into the buyer's escrow account, licence signed and wrapped,
  invoice, audit row, all in one transaction;
- API: each client POSTs ``/api/v1/purchases/`` with a fresh Idempotency-Key over
  HTTP/1.1 keep-alive to gunicorn serving the platform, configured as ``scripts/run``
  runs it: 2 gthread workers of 4 threads (one process per core; the threads overlap
  the database round trips; gthread keeps connections alive, which sync workers do not).

Before the loads, one client alone: the SQL round trips of one purchase each way, and
the client's and the server's CPU time per purchase; recorded with the rates.

It makes (and drops) its own database, ``peermark_bench``, on the server named by
``BENCH_PG`` (default ``postgres://postgres@127.0.0.1:5432``). Targets: 300/s through
the service layer and 150/s through the API; each is also given as a share of the floor.
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
    from exchange.licensing.services import device_register
    from licensing.core.device import DeviceKeys

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


def _one_client(world: dict[str, object], purchases: int = 200) -> dict[str, float]:
    """One client alone, in this process on warm caches: the SQL round trips (BEGIN and
    COMMIT included) of one purchase through the service layer and of one through the
    API; and per service-layer purchase, the wall time, this process's CPU time and the
    PostgreSQL backend's (read from /proc: the server runs on this machine)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from exchange.accounts.models import User
    from exchange.purchases.services import purchase_create

    buyer_id, device_id, token = world["buyers"][0]  # type: ignore[index]
    buyer = User.objects.get(pk=buyer_id)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    body = {"work": world["work"], "device": device_id}

    def buy() -> None:
        purchase_create(buyer=buyer, work_id=world["work"], device_id=device_id)

    def buy_over_http() -> None:
        response = client.post("/api/v1/purchases/", body, content_type="application/json",
                               HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
        assert response.status_code == 201, response.content

    result: dict[str, float] = {}
    for name, action in (("service", buy), ("api", buy_over_http)):
        action()  # warm up: first-use caches (package, manifest, key ring, token's last use)
        with CaptureQueriesContext(connection) as queries:
            action()
        result[f"trips_{name}"] = len(queries.captured_queries)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = Path(f"/proc/{cursor.fetchone()[0]}/stat")  # the server is local

    def backend_cpu() -> float:
        fields = backend.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    began, cpu, server = time.perf_counter(), time.process_time(), backend_cpu()
    for _ in range(purchases):
        buy()
    result["wall_ms"] = (time.perf_counter() - began) * 1000 / purchases
    result["cpu_ms"] = (time.process_time() - cpu) * 1000 / purchases
    result["server_ms"] = (backend_cpu() - server) * 1000 / purchases
    connection.close()
    return result


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


def _floor_client(index: int, seconds: float, start: mp.Barrier, out: mp.Queue,
                  world: dict[str, object]) -> None:
    """The database's share of a sale with no application work: the statements one real
    purchase sent (its reads, then its writes in one transaction), replayed from psycopg
    in a loop, bound on the server and prepared as the platform's are, each sale with
    fresh purchase and licence ids and watermark. No client can sell faster than this on
    this database."""
    import django
    import psycopg

    django.setup()
    from django.db import connection

    from exchange.accounts.models import User
    from exchange.ledger.models import JournalEntry
    from exchange.purchases.services import purchase_create

    buyer_id, device_id, _token = world["buyers"][index]  # type: ignore[index]
    buyer = User.objects.get(pk=buyer_id)
    purchase_create(buyer=buyer, work_id=world["work"], device_id=device_id)  # warm caches
    sent: list[tuple[str, list[object]]] = []

    def capture(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        sent.append((sql, list(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        purchase = purchase_create(buyer=buyer, work_id=world["work"], device_id=device_id)
    licence = purchase.licence
    assert licence is not None
    entry_id = JournalEntry.objects.get(reference=str(purchase.pk)).pk
    reads, writes = [], []
    for sql, params in sent:
        (reads if sql.lstrip().upper().startswith("SELECT") else writes).append((sql, params))
    connection.close()

    with psycopg.connect(f"{SERVER}/{DB_NAME}", autocommit=True) as conn:
        cursor = conn.cursor()

        def sell() -> None:
            new_purchase, new_licence = uuid.uuid4(), uuid.uuid4()
            swap: dict[object, object] = {
                purchase.pk: new_purchase, str(purchase.pk): str(new_purchase),
                licence.pk: new_licence, str(licence.pk): str(new_licence),
                licence.watermark_stored: int.from_bytes(os.urandom(8), "big", signed=True),
            }
            for sql, params in reads:
                cursor.execute(sql, params, prepare=True)
                cursor.fetchall()
            with conn.transaction():
                for sql, params in writes:
                    fresh = [swap.get(v, v) if isinstance(v, uuid.UUID | str | int) else v
                             for v in params]
                    cursor.execute(sql, fresh, prepare=True)
                    # Every write touched its rows (the wallet's guarded move included).
                    if cursor.rowcount < 1:
                        raise RuntimeError(f"a replayed write touched {cursor.rowcount} "
                                           f"rows: {sql[:60]}")
                    if 'INTO "ledger_journalentry"' in sql:
                        swap[entry_id] = cursor.fetchone()[0]  # the postings point at it

        sell()
        start.wait()
        done, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            sell()
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


def _start_server(port: int, workers: int, threads: int, log: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "exchange.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
         "--worker-class", "gthread" if threads else "sync",
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
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4,
                        help="gunicorn threads per worker (0: sync workers)")
    parser.add_argument("--only", choices=("baseline", "floor", "service", "api"),
                        action="append",
                        help="measure only these (repeatable); records nothing")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="peermark-bench-") as data_dir:
        _prepare_environment(data_dir)
        _recreate_database()
        world = _setup_world(args.clients)
        alone = _one_client(world)
        port = 18_000 + os.getpid() % 1000
        server = _start_server(port, args.workers, args.threads, Path(data_dir) / "server.log")
        rates: dict[str, list[float]] = {"baseline": [], "floor": [], "service": [], "api": []}
        try:
            only = args.only or list(rates)
            for run in range(args.runs):
                if "baseline" in only:
                    rates["baseline"].append(_measure(_baseline_client, args.clients, args.seconds))
                if "floor" in only:
                    rates["floor"].append(
                        _measure(_floor_client, args.clients, args.seconds, world))
                if "service" in only:
                    rates["service"].append(
                        _measure(_service_client, args.clients, args.seconds, world))
                if "api" in only:
                    rates["api"].append(_measure(_api_client, args.clients, args.seconds, world,
                                                 f"http://127.0.0.1:{port}"))
                print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s"
                                                      for k, v in rates.items() if v), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    if not all(rates.values()):
        return  # a partial look (--only): nothing to compare or record
    base, floor, service, api = (median(rates[k]) for k in ("baseline", "floor", "service", "api"))
    server_kind = (f"{args.workers} workers x {args.threads} threads" if args.threads
                   else f"{args.workers} sync workers")

    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    def spread(key: str) -> str:
        return f"{min(rates[key]):,.0f} to {max(rates[key]):,.0f}"

    table = (
        "| load (8 concurrent clients) | median per second | runs' range | share of the floor "
        "| target |\n"
        "|---|---|---|---|---|\n"
        f"| plain single-row UPDATE (psycopg, autocommit), for scale | {base:,.0f} "
        f"| {spread('baseline')} | {base / floor:.1f} | |\n"
        f"| the database's floor: a sale's own statements replayed by psycopg, no "
        f"application work | {floor:,.0f} | {spread('floor')} | 1 | |\n"
        f"| purchase through the service layer | {service:,.0f} | {spread('service')} "
        f"| {service / floor:.2f} | ≥ 300/s: {verdict(service >= 300)} |\n"
        f"| purchase through the HTTP API (gunicorn, {server_kind}) | {api:,.0f} "
        f"| {spread('api')} | {api / floor:.2f} | ≥ 150/s: {verdict(api >= 150)} |\n"
    )
    trips = f"{alone['trips_service']:.0f} SQL round trips through the service layer"
    as_shipped = (" as `scripts/run` serves it (one process per core, threads to overlap the "
                  "database round trips, HTTP keep-alive)"
                  if (args.workers, args.threads) == (2, 4) else "")
    print(table)
    print(_floor_note(floor, service, api))
    print(f"{trips}, {alone['trips_api']:.0f} through the API; one client alone: "
          f"{alone['wall_ms']:.1f} ms per purchase, {alone['cpu_ms']:.1f} ms Python CPU, "
          f"{alone['server_ms']:.1f} ms PostgreSQL CPU")
    if not args.no_write:
        write_section("Purchases (money)", (
            f"\n`{Path(sys.argv[0]).as_posix()}` — {args.runs} runs of {args.seconds:.0f} s "
            f"each, medians; {machine()}; {today()}. PostgreSQL on the same machine; the API "
            f"served by gunicorn, {server_kind}{as_shipped}.\n\n"
            "Each purchase reads the work (with its seller), the device and the buyer's "
            "wallet and escrow accounts, then in one transaction debits the wallet and checks "
            "it in one conditional UPDATE, credits the escrow, writes the journal entry and "
            "its two postings, the licence (signed with Ed25519, its keys HPKE-wrapped to the "
            "device), the purchase, the invoice and the audit row. Everything goes through "
            "Django's public API: the ORM for the rows, and for the ledger's own two "
            "statements (the guarded balance move and the postings) plain `cursor.execute` "
            "with parameters. On PostgreSQL parameters are bound on the server "
            "(`server_side_binding`) and psycopg prepares each statement on its fifth use "
            f"per connection (`prepare_threshold`): {trips}, BEGIN and COMMIT included; "
            f"{alone['trips_api']:.0f} through the API, which adds the bearer-token lookup, "
            "the idempotency claim and the stored response. One client alone takes "
            f"{alone['wall_ms']:.1f} ms per service-layer purchase: {alone['cpu_ms']:.1f} ms "
            f"of CPU in the client's Python and {alone['server_ms']:.1f} ms in PostgreSQL. "
            "With eight clients sharing the two cores with the server, that CPU, not the "
            "database's locks, sets the rate.\n\n"
            + table
            + "\n" + _floor_note(floor, service, api)))


def _floor_note(floor: float, service: float, api: float) -> str:
    return (f"The floor is what the database allows a sale with no client work at all: "
            f"{floor:,.0f}/s. The service layer reaches {service / floor:.2f} of it and the "
            f"API {api / floor:.2f}; the rest is the application's own CPU per sale (the "
            "licence's Ed25519 signature and HPKE key wrapping, the ORM building and "
            "reading rows, Django's transaction, and through the API the request, the "
            "token and the idempotency record), which shares the two cores with the "
            "database.\n")


if __name__ == "__main__":
    main()
