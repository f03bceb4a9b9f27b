"""Licensing benchmarks: packaging throughput and order verification rate.

One command, medians of several repetitions. The raw baselines and order verification
run pinned to one core; packaging is measured twice, pinned to that core and, as it runs
in a worker, free to put the master's hash on the second core:

    .venv/bin/python benchmarks/licensing/run.py

1. Packaging: MB/s of master packaged (``package_work``: a master file on disk to
   a ciphertext file on disk, master hash included) beside raw AES-256-GCM +
   SHA-256 over the same bytes in memory, as a ratio (target >= 60%).
2. Order verification: orders/s through ``OrderVerifier.verify`` (licence cached,
   revocation list, manifest, window and replay checks included) beside the raw
   ``cryptography`` Ed25519 verify rate over the same signed bytes (target >= 80%).

Raw and ours are measured back to back (per repetition for packaging, per chunk of
orders for verification) and each ratio is the median of those pairs, so that noise
from other work on the shared machine falls on both sides alike. Results go to the
"## Licensing" section at the end of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jws as joserfc_jws
from joserfc.jwk import OKPKey

from benchmarks.common import RESULTS, write_section
from licensing.core import (
    DeviceKeys,
    KeyRing,
    KeyState,
    LicenceKeys,
    Manifest,
    OrderVerifier,
    PlatformKey,
    issue_licence,
    package_work,
    read_revocation_list,
    sign_order,
    sign_revocation_list,
)
from licensing.core.jws import parse_document
from licensing.core.kinds import DocumentKind

MIB = 1 << 20
PIECE_SIZE = MIB
NOW = 1_900_000_000
SECTION = "## Licensing"
CHUNK = 100  # orders per alternation between the raw and our verifier
PACKAGING_TARGET = 0.60
ORDERS_TARGET = 0.80


def pin_to_one_core() -> int:
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def write_master(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 16 * MIB))
            out.write(chunk)
            left -= len(chunk)


def raw_aead_sha(master: memoryview, key: bytes, *, hash_plaintext: bool) -> None:
    """AES-256-GCM + SHA-256 of each ciphertext piece, in memory (the raw baseline).

    With ``hash_plaintext`` it also hashes the master: all the cryptographic
    work packaging must do, without I/O or bookkeeping.
    """
    aead = AESGCM(key)
    nonce = bytes(12)
    master_hash = hashlib.sha256()
    # Into one reused buffer, as packaging seals (``encrypt`` would allocate per piece
    # and slow the baseline down, flattering the ratio).
    out = memoryview(bytearray(PIECE_SIZE + 16))
    for offset in range(0, len(master), PIECE_SIZE):
        piece = master[offset : offset + PIECE_SIZE]
        if hash_plaintext:
            master_hash.update(piece)
        sealed = out[: len(piece) + 16]
        aead.encrypt_into(nonce, piece, b"aad", sealed)
        hashlib.sha256(sealed).digest()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_packaging(size_mib: int, repetitions: int, all_cpus: set[int]) -> dict[str, float]:
    size = size_mib * MIB + 12345  # an odd size: not a multiple of the piece size
    with tempfile.TemporaryDirectory(prefix="pm-bench-") as folder:
        source, target = Path(folder) / "master.bin", Path(folder) / "work.ciphertext"
        write_master(source, size)
        master = memoryview(source.read_bytes())
        key = os.urandom(32)
        raw, inherent, ours, ours_one_core = [], [], [], []
        pinned = os.sched_getaffinity(0)

        def package() -> None:
            package_work(source, target, work_id="bench-work", piece_size=PIECE_SIZE)
            target.unlink()

        for _ in range(repetitions):
            raw.append(timed(lambda: raw_aead_sha(master, key, hash_plaintext=False)))
            inherent.append(timed(lambda: raw_aead_sha(master, key, hash_plaintext=True)))
            ours_one_core.append(timed(package))
            # Packaging as it runs in a worker: the master hash on a second thread.
            os.sched_setaffinity(0, all_cpus)
            try:
                ours.append(timed(package))
            finally:
                os.sched_setaffinity(0, pinned)
    megabytes = size / 1e6
    return {
        "size": size,
        "raw": megabytes / statistics.median(raw),
        "inherent": megabytes / statistics.median(inherent),
        "ours": megabytes / statistics.median(ours),
        "ours_one_core": megabytes / statistics.median(ours_one_core),
        "ratio_one_core": statistics.median(
            r / o for r, o in zip(raw, ours_one_core, strict=True)
        ),
        # each repetition's ratio compares measurements taken back to back
        "ratio": statistics.median(r / o for r, o in zip(raw, ours, strict=True)),
        "ceiling": statistics.median(r / i for r, i in zip(raw, inherent, strict=True)),
    }


def bench_orders(count: int, repetitions: int) -> dict[str, float]:
    ring = KeyRing([PlatformKey.generate(state=KeyState.ACTIVE)])
    device = DeviceKeys.generate()
    pieces = 256
    manifest = Manifest(
        work_id="bench-work",
        master_size=pieces * PIECE_SIZE - 777,
        piece_size=PIECE_SIZE,
        piece_hashes=tuple(os.urandom(32) for _ in range(pieces)),
    )
    licence_id, peer_id = "licence-0123456789abcdef", "peer-" + "p" * 38
    licence = issue_licence(
        keyring=ring,
        licence_id=licence_id,
        buyer="buyer-0123456789",
        device=device.public,
        manifest=manifest,
        watermark_payload=2**63 + 12345,
        uses=["view", "download"],
        issued_at=NOW - 60,
        expires_at=NOW + 86400,
        byte_allowance=2 * pieces * PIECE_SIZE,
        keys=LicenceKeys(content_key=os.urandom(32), watermark_key=os.urandom(32)),
    )
    revocations = read_revocation_list(
        sign_revocation_list(
            keyring=ring,
            version=7,
            issued_at=NOW - 60,
            next_update=NOW + 3600,
            licences=[f"revoked-{i}" for i in range(1000)],
            devices=[f"device-{i}" for i in range(100)],
        ),
        keyring=ring,
        now=NOW,
    )
    batches = [
        [
            sign_order(
                device,
                licence_id=licence_id,
                peer_id=peer_id,
                piece=i % pieces,
                byte_count=manifest.piece_length(i % pieces),
                issued_at=NOW - (i % 30),
            )
            for i in range(count)
        ]
        for _ in range(repetitions)
    ]
    public_key: Ed25519PublicKey = device.public.signing_key
    device_jwk = OKPKey.import_key(public_key)
    registry = joserfc_jws.JWSRegistry(algorithms=["Ed25519"])
    raw, ours, generic = [], [], []
    ours_ratios, generic_ratios = [], []
    for orders in batches:
        # The raw baseline verifies exactly the bytes our verifier verifies.
        signed = [
            (d.signature, d.signing_input)
            for d in (parse_document(o, DocumentKind.ORDER) for o in orders)
        ]
        verifier = OrderVerifier(keyring=ring, peer_id=peer_id)
        verifier.licence(licence_id, licence, now=NOW)  # the licence is cached

        def run_raw(chunk: list[tuple[bytes, bytes]]) -> None:
            for signature, message in chunk:
                public_key.verify(signature, message)

        def run_ours(chunk: list[str], verifier: OrderVerifier = verifier) -> None:
            for order in chunk:
                verifier.verify(order, licence, manifest=manifest, revocations=revocations, now=NOW)

        def run_generic(chunk: list[str]) -> None:
            # For comparison only: joserfc's generic verification of the same orders
            # (header registry and signature; no claims, licence or replay checks).
            for order in chunk:
                joserfc_jws.deserialize_compact(order, device_jwk, registry=registry)

        totals = {"raw": 0.0, "ours": 0.0, "generic": 0.0}
        # Small chunks, measured back to back (in rotating order), so that each
        # chunk's ratio compares the two sides under the same machine load.
        for number, start in enumerate(range(0, count, CHUNK)):
            chunk_signed, chunk_orders = (
                signed[start : start + CHUNK],
                orders[start : start + CHUNK],
            )
            steps: list[tuple[str, Callable[[], object]]] = [
                ("raw", partial(run_raw, chunk_signed)),
                ("ours", partial(run_ours, chunk_orders)),
                ("generic", partial(run_generic, chunk_orders)),
            ]
            shift = number % 3
            seconds = {name: timed(step) for name, step in steps[shift:] + steps[:shift]}
            for name, value in seconds.items():
                totals[name] += value
            ours_ratios.append(seconds["raw"] / seconds["ours"])
            generic_ratios.append(seconds["raw"] / seconds["generic"])
        raw.append(count / totals["raw"])
        ours.append(count / totals["ours"])
        generic.append(count / totals["generic"])
    return {
        "raw": statistics.median(raw),
        "ours": statistics.median(ours),
        "generic": statistics.median(generic),
        "ratio": statistics.median(ours_ratios),
        "generic_ratio": statistics.median(generic_ratios),
    }


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "model": model,
        "nproc": nproc or str(os.cpu_count()),
        "python": platform.python_version(),
        "cryptography": metadata.version("cryptography"),
        "joserfc": metadata.version("joserfc"),
    }


def render(
    packaging: dict[str, float], orders: dict[str, float], args: argparse.Namespace, cpu: int
) -> str:
    info = args.machine
    load = ", ".join(f"{x:.2f}" for x in args.load_average)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    pack_ratio = packaging["ratio"]
    ceiling = packaging["ceiling"]
    order_ratio = orders["ratio"]

    def verdict(ratio: float, target: float) -> str:
        return f"{target:.0%}: " + ("met" if ratio >= target else "MISSED")

    rows = [
        ("measure", "ours", "raw, same run", "ratio", "target"),
        ("---", "---:", "---:", "---:", "---:"),
        (
            f"packaging, MB/s of master ({packaging['size'] / MIB:.0f} MiB, file to file,"
            " 1 MiB pieces), as a worker runs it: two cores, the master hash on the second",
            f"{packaging['ours']:,.0f}",
            f"{packaging['raw']:,.0f} (AES-256-GCM + SHA-256 in memory, one core)",
            f"{pack_ratio:.0%}",
            verdict(pack_ratio, PACKAGING_TARGET),
        ),
        (
            "packaging, the same, pinned to one core (like for like with the raw baseline)",
            f"{packaging['ours_one_core']:,.0f}",
            f"{packaging['raw']:,.0f}",
            f"{packaging['ratio_one_core']:.0%}",
            verdict(packaging["ratio_one_core"], PACKAGING_TARGET) + " on one core",
        ),
        (
            "order verification, orders/s (licence cached; revocation, manifest, window"
            " and replay checked)",
            f"{orders['ours']:,.0f}",
            f"{orders['raw']:,.0f} (Ed25519 verify of the same bytes)",
            f"{order_ratio:.0%}",
            verdict(order_ratio, ORDERS_TARGET),
        ),
    ]
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)

    return f"""{SECTION}

Run with `.venv/bin/python benchmarks/licensing/run.py` (defaults:
`--master-mib {args.master_mib} --orders {args.orders} --repetitions {args.repetitions}`),
raw baselines and order verification pinned to CPU {cpu} (packaging also on both cores,
below); rates are medians of {args.repetitions} interleaved
repetitions, ratios are medians of paired measurements (below).
Machine: {info["model"]}, `nproc` = {info["nproc"]} (shared with other work);
Python {info["python"]}, cryptography {info["cryptography"]}, joserfc {info["joserfc"]}; {date}.

{table}

Packaging must do more cryptography than the raw baseline: besides AES-256-GCM
and a SHA-256 of every ciphertext piece (for the manifest), it hashes the master
itself (the work's SHA-256). The same run measured all of that in memory, with no
I/O, at {packaging["inherent"]:,.0f} MB/s: {ceiling:.0%} of the raw baseline, the
ceiling for any single-core packager. Pinned to one core, packaging reaches
{packaging["ratio_one_core"] / ceiling:.0%} of that ceiling; the rest is reading
the master from and writing the ciphertext to the file system.

On one core that extra pass caps packaging at the ceiling above, below the 60%
target whatever the code does. So packaging hashes the master on a second thread
(hashlib releases the GIL) while the first seals and hashes pieces; a Celery worker on
this 2-core machine runs it that way, at {packaging["ours"]:,.0f} MB/s against
{packaging["ours_one_core"]:,.0f} MB/s pinned. The first row compares that two-core
figure with the one-core raw baseline the target names; the second row is the like-for-
like one-core comparison, and it misses the target by the ceiling's margin.

Order verification parses the compact JWS once (strict base64url, each distinct
header checked once and cached), checks the licence (cached by `jti` with its exact
token text), the revocation list, the manifest, the claims, the window and the
replay cache, and verifies the signature with the device's Ed25519 key object parsed
once per licence. For comparison, joserfc's generic `deserialize_compact` over the same
orders, which checks only the header registry and the signature (no claims, licence,
revocation or replay checks), ran at {orders["generic"]:,.0f}/s
({orders["generic_ratio"]:.0%} of raw) in the same run.

Load average when the run started: {load}. The machine is shared, so absolute
figures move from run to run. Rates are medians over repetitions; each ratio is the
median of paired measurements taken back to back (per repetition for packaging, per
chunk of {CHUNK} orders, in rotating order, for orders), so both sides of a pair see
the same load.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--master-mib", type=int, default=256)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--only-orders", action="store_true", help="skip packaging (print only; for profiling)"
    )
    args = parser.parse_args()
    # Before pinning: nproc reports the CPUs this process may use.
    args.machine = machine()
    args.load_average = os.getloadavg()
    all_cpus = os.sched_getaffinity(0)
    cpu = pin_to_one_core()
    if args.only_orders:
        orders = bench_orders(args.orders, args.repetitions)
        print(f"orders/s {orders['ours']:,.0f}, raw {orders['raw']:,.0f}: ", end="")
        print(f"{orders['ratio']:.1%} (joserfc generic {orders['generic_ratio']:.1%})")
        return
    print(f"pinned to CPU {cpu}; packaging {args.master_mib} MiB x {args.repetitions} ...")
    packaging = bench_packaging(args.master_mib, args.repetitions, all_cpus)
    print(f"verifying {args.orders} orders x {args.repetitions} ...")
    orders = bench_orders(args.orders, args.repetitions)
    section = render(packaging, orders, args, cpu)
    print()
    print(f"{'measure':<28}{'ours':>12}{'raw':>12}{'ratio':>8}")
    print(
        f"{'packaging MB/s':<28}{packaging['ours']:>12,.0f}{packaging['raw']:>12,.0f}"
        f"{packaging['ratio']:>8.0%}"
    )
    print(
        f"{'  same, pinned to one core':<28}{packaging['ours_one_core']:>12,.0f}"
        f"{packaging['raw']:>12,.0f}{packaging['ratio_one_core']:>8.0%}"
    )
    print(
        f"{'  ceiling (AES + 2 SHA)':<28}{packaging['inherent']:>12,.0f}{packaging['raw']:>12,.0f}"
        f"{packaging['ceiling']:>8.0%}"
    )
    print(
        f"{'order verification /s':<28}{orders['ours']:>12,.0f}{orders['raw']:>12,.0f}"
        f"{orders['ratio']:>8.0%}"
    )
    print(
        f"{'  joserfc generic /s':<28}{orders['generic']:>12,.0f}{orders['raw']:>12,.0f}"
        f"{orders['generic_ratio']:>8.0%}"
    )
    if not args.no_write:
        body = section.removeprefix(SECTION).lstrip("\n")
        write_section(SECTION.removeprefix("## "), "\n" + body)
        print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
