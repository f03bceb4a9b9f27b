"""``python -m peerindex``: serve the index fast path with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import argparse

import uvicorn

from peerindex.config import Config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m peerindex",
                                     description="Serve the peer index's fast path.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=1,
                        help="processes (each with its own event loop; one Redis for all)")
    parser.add_argument("--forwarded-allow-ips", default="",
                        help="behind a proxy: the proxies whose X-Forwarded-For names the "
                             "client (comma-separated); unset, the peer address is the client")
    parser.add_argument("--max-connections", type=int, default=4000,
                        help="open connections per process before new ones are refused (503)")
    args = parser.parse_args(argv)
    Config.from_env()  # refuse a bad environment here, before any worker starts
    uvicorn.run("peerindex.app:create_app", factory=True, host=args.host, port=args.port,
                workers=args.workers, loop="uvloop", http="httptools", lifespan="on",
                access_log=False, log_level="warning", limit_concurrency=args.max_connections,
                proxy_headers=bool(args.forwarded_allow_ips),
                forwarded_allow_ips=args.forwarded_allow_ips or None, ws="none")


if __name__ == "__main__":
    main()
