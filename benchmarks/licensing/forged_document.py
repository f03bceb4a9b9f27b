"""What refusing a forged maximum-size manifest costs (issue 16, finding 6).

    .venv/bin/python benchmarks/licensing/forged_document.py [--runs 15]

A token of the manifest's maximum size (8 MiB) with a well-formed header naming a real
key of the ring, a payload of valid JSON (the piece hashes an attacker would pad with),
and a signature that does not verify. Times ``KeyRing.verify`` refusing it: median and
range of ``--runs`` refusals, in milliseconds, with the time to verify a genuine
manifest of the same size beside it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import contextlib

from licensing.core import KeyRing, KeyState, LicensingError, PlatformKey
from licensing.core.kinds import DocumentKind


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    key = PlatformKey.generate(state=KeyState.ACTIVE)
    ring = KeyRing([key])
    limit = DocumentKind.MANIFEST.max_token_bytes
    # Claims padded with hex "hashes" so the token lands just under the limit.
    hashes: list[str] = []
    claims = {"work": "forged", "size": 1, "piece_size": 1 << 20, "hashes": hashes}
    per_hash = len(b64(json.dumps(os.urandom(32).hex()).encode() + b","))
    hashes.extend(os.urandom(32).hex() for _ in range(int(limit * 0.95) // per_hash))
    genuine = ring.sign(DocumentKind.MANIFEST, claims)
    header, payload, _signature = genuine.split(".")
    forged = ".".join((header, payload, b64(bytes(64))))
    assert len(forged) <= limit, len(forged)

    def timed(token: str) -> list[float]:
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            with contextlib.suppress(LicensingError):
                ring.verify(token, DocumentKind.MANIFEST)
            times.append((time.perf_counter() - started) * 1000)
        return times

    refused, accepted = timed(forged), timed(genuine)
    print(f"token {len(forged):,} bytes; {args.runs} runs each")
    for label, times in (("forged, refused", refused), ("genuine, verified", accepted)):
        print(f"{label}: median {statistics.median(times):.1f} ms "
              f"(range {min(times):.1f}-{max(times):.1f})")


if __name__ == "__main__":
    main()
