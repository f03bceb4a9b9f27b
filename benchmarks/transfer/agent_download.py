"""One download by the agent, in its own process, for the transfer benchmark.

    python benchmarks/transfer/agent_download.py --sale SALE.json --store DIR \\
        (--web-seed URL ... | --peer DEVICE_ID=URL ...) [--output FILE] [--check]

Verifies the signed manifest and licence, opens the buyer's piece store, and runs the
``Downloader``: every piece's length and SHA-256 checked against the manifest before it
is written to the store, every piece decrypted (AES-256-GCM) as soon as it is verified,
into ``--output`` (the plaintext, at its offset) or, without it, in memory only. Prints
one JSON line: seconds from opening the store to the last piece decrypted, bytes, and
per-source bytes. ``--check`` then compares the output's SHA-256 with the master's.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
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
    parser.add_argument("--output", type=Path)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    bought = read_sale(args.sale)
    sale, manifest, device, licence = bought.data, bought.manifest, bought.device, bought.licence
    keys = licence.unwrap_keys(device)
    cipher = cipher_for(keys.content_key, manifest)
    full = bitfield_full(manifest.piece_count)
    sources = []
    for item in args.peer:
        peer_id, _, url = item.partition("=")
        sources.append(Source(peer_id=peer_id, url=url, bitfield=full))

    output = -1
    if args.output is not None:
        output = os.open(args.output, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.posix_fallocate(output, 0, manifest.master_size)

    def decrypt(index: int, ciphertext: memoryview) -> None:
        plaintext = cipher.open(index, ciphertext)
        if output >= 0:
            os.pwrite(output, plaintext, index * manifest.piece_size)

    started = time.perf_counter()
    work = PieceStore(args.store).add_verified(manifest, sale["manifest"])
    downloader = Downloader(
        work=work,
        licence=licence,
        licence_token=sale["licence"],
        device=device,
        sources=sources,
        web_seeds=args.web_seed,
        max_connections=args.connections,
        on_piece=decrypt,
    )
    result = asyncio.run(downloader.run())
    elapsed = time.perf_counter() - started
    report = {
        "seconds": elapsed,
        "bytes": result.bytes_fetched,
        "by_peer": result.bytes_by_peer,
        "by_web_seed": result.bytes_by_web_seed,
        "dropped": [d.reason for d in result.dropped],
    }
    if args.check and output >= 0:
        digest = hashlib.sha256()
        with open(args.output, "rb") as stream:  # type: ignore[arg-type]
            while chunk := stream.read(1 << 22):
                digest.update(chunk)
        report["output_matches_master"] = digest.hexdigest() == sale["master_sha256"]
    if output >= 0:
        os.close(output)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
