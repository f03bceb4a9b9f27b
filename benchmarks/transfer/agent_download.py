"""The download alone, in its own process: the transfer benchmark's secondary rows.

    python benchmarks/transfer/agent_download.py --sale SALE.json --store DIR \\
        (--web-seed URL ... | --peer DEVICE_ID=URL ...)

Verifies the signed manifest and licence, opens the buyer's piece store, and runs the
``Downloader``: every piece's length and SHA-256 checked against the manifest before it
is written to the store, every piece decrypted (AES-256-GCM) in memory as soon as it is
verified; no copy is written. Prints one JSON line: seconds from opening the store to
the last piece decrypted (start-up excluded, so not the user's path: `agent_get.py` is),
bytes, and per-source bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.download import Downloader, Source
from agent.store import PieceStore
from benchmarks.transfer.sale import read_sale
from licensing.core.bitfield import bitfield_full
from licensing.core.packaging import cipher_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sale", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--web-seed", action="append", default=[])
    parser.add_argument("--peer", action="append", default=[], help="DEVICE_ID=URL")
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()

    bought = read_sale(args.sale)
    manifest, device, licence = bought.manifest, bought.device, bought.licence
    cipher = cipher_for(licence.unwrap_keys(device).content_key, manifest)
    full = bitfield_full(manifest.piece_count)
    sources = []
    for item in args.peer:
        peer_id, _, url = item.partition("=")
        sources.append(Source(peer_id=peer_id, url=url, bitfield=full))

    def decrypt(index: int, ciphertext: memoryview) -> None:
        cipher.open(index, ciphertext)

    started = time.perf_counter()
    work = PieceStore(args.store).add_verified(manifest, bought.data["manifest"])
    downloader = Downloader(
        work=work,
        licence=licence,
        licence_token=bought.data["licence"],
        device=device,
        sources=sources,
        web_seeds=args.web_seed,
        max_connections=args.connections,
        on_piece=decrypt,
    )
    result = asyncio.run(downloader.run())
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "seconds": elapsed,
        "bytes": result.bytes_fetched,
        "by_peer": result.bytes_by_peer,
        "by_web_seed": result.bytes_by_web_seed,
        "dropped": [d.reason for d in result.dropped],
    }), flush=True)


if __name__ == "__main__":
    main()
