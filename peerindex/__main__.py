"""``python -m peerindex``: serve the index fast path (serve.py runs the processes)."""

from __future__ import annotations

import argparse

from peerindex.config import Config
from peerindex.serve import Options, serve_one, supervise


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
    if args.workers > 1 and args.port == 0:
        parser.error("several workers share one port: give it (--port 0 would give each "
                     "its own)")
    Config.from_env()  # refuse a bad environment here, before any worker starts
    options = Options(args.host, args.port, args.forwarded_allow_ips, args.max_connections)
    if args.workers <= 1:
        serve_one(options)
        return
    raise SystemExit(supervise(options, args.workers))


if __name__ == "__main__":
    main()
