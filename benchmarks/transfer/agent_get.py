"""The agent's `get`, after the purchase, as one process: the transfer benchmark's headline.

    python benchmarks/transfer/agent_get.py --sale SALE.json --store DIR --out FILE \\
        (--web-seed URL ... | --peer DEVICE_ID=URL ...) [--check]

Runs what `agent get` runs once it holds a licence, through the same functions
(``agent.deliver.streamed_copy``, ``agent.workflow.fetch``, ``StreamedCopy.finish``,
``agent.deliver.receipt_for``): the signed manifest and licence verified, the buyer's
piece store opened, every piece length- and hash-checked and written to the store (kept
for seeding), decrypted into the copy as it arrives, the copy hashed, fsynced and renamed
onto ``--out``, the receipt signed, and the store closed with its flush left to its next
opener, as `get` leaves it. What it leaves out
are the platform's round trips (buy, fetch the sources, send the receipt).

The parent times this process from start to exit, as it times aria2c. The JSON line
printed at the end splits the time inside it (``phases``: imports, opening, download,
delivery) for the profile in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse
import hashlib
import json
import resource
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.deliver import deliver, receipt_for, streamed_copy
from agent.download import Source
from agent.store import PieceStore
from agent.workflow import fetch
from benchmarks.transfer.sale import read_sale


def main() -> None:
    imported = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sale", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--web-seed", action="append", default=[])
    parser.add_argument("--peer", action="append", default=[], help="DEVICE_ID=URL")
    parser.add_argument("--content-type", default="application/octet-stream")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    bought = read_sale(args.sale)
    sale, manifest, device, licence = bought.data, bought.manifest, bought.device, bought.licence
    sources = []
    for item in args.peer:
        peer_id, _, url = item.partition("=")
        sources.append(Source(peer_id=peer_id, url=url))  # bitfield unknown, as from a hit
    store = PieceStore(args.store)
    work = store.add_verified(manifest, sale["manifest"])
    keys = licence.unwrap_keys(device)
    copy = streamed_copy(store=work, manifest=manifest, licence=licence, keys=keys,
                         destination=args.out, content_type=args.content_type)
    opened = time.perf_counter()
    result = fetch(work, licence=licence, licence_token=sale["licence"], device=device,
                   sources=sources, web_seeds=args.web_seed, rate_limit_bps=None, copy=copy)
    fetched = time.perf_counter()
    if copy is not None:
        delivery = copy.finish(work)
    else:
        delivery = deliver(store=work, manifest=manifest, licence=licence, keys=keys,
                           destination=args.out, content_type=args.content_type)
    receipt_for(delivery, device=device, licence=licence, served_bytes=result.bytes_by_peer,
                now=int(time.time()))
    delivered = time.perf_counter()
    store.close(flush=False)  # as `get` does
    closed = time.perf_counter()
    report: dict[str, object] = {
        "phases": {
            "imports": imported - STARTED,
            "open": opened - imported,
            "download": fetched - opened,
            "deliver": delivered - fetched,
            "close": closed - delivered,
        },
        "bytes": result.bytes_fetched,
        "dropped": [d.reason for d in result.dropped],
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if args.check:
        digest = hashlib.sha256()
        with open(args.out, "rb") as stream:
            while chunk := stream.read(1 << 22):
                digest.update(chunk)
        report["output_matches_master"] = digest.hexdigest() == sale["master_sha256"]
        report["delivery_sha256_matches"] = delivery.sha256_hex == sale["master_sha256"]
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
