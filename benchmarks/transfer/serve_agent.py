"""One serving agent for the transfer benchmark: the agent's own piece server, own process.

    python benchmarks/transfer/serve_agent.py --store DIR --trust FILE.json

Opens the piece store (which must already hold the work), makes a device identity,
listens on a free loopback port and prints one JSON line ``{"port", "device_id"}``;
then serves until SIGTERM. Every request is checked as in production: licence (cached
per jti) and signed order, revocation list, replay cache; every order is recorded in an
outbox (SQLite) in the store's folder.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agent.outbox import OrderOutbox
from agent.server import PieceServer, start_server
from agent.store import PieceStore
from licensing.core import DeviceKeys, KeyRing, RevocationStore


async def serve(store_dir: Path, trust: dict[str, str], port: int) -> None:
    import time

    ring = KeyRing.from_jwks(trust["jwks"])
    revocations = RevocationStore()
    revocations.offer(trust["revocations"], keyring=ring, now=int(time.time()))
    device = DeviceKeys.generate()
    store = PieceStore(store_dir)
    outbox = OrderOutbox(store_dir.parent / f"{store_dir.name}-outbox.sqlite3")
    app = PieceServer(
        store=store,
        device_id=device.device_id,
        keyring_provider=lambda: ring,
        revocations_provider=lambda: revocations.current(now=int(time.time())),
        outbox=outbox,
    ).app()
    running = await start_server(app, port=port)
    print(json.dumps({"port": running.port, "device_id": device.device_id}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()
    outbox.close()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--trust", type=Path, required=True, help="JSON: jwks, revocations")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.store, json.loads(args.trust.read_text()), args.port))


if __name__ == "__main__":
    main()
