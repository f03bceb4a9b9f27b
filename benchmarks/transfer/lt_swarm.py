"""The libtorrent side of the transfer benchmark (runs in benchmarks/.venv-transfer).

    lt_swarm.py make FILE TORRENT PIECE_BYTES      make a v1 torrent of FILE
    lt_swarm.py seed TORRENT SAVE_DIR              seed (prints {"port"}; until SIGTERM)
    lt_swarm.py download TORRENT SAVE_DIR PORT...  fetch from the seeders on those ports,
                                                   print {"seconds"} once every piece is
                                                   hash-checked

Loopback only: no DHT, LSD, UPnP or NAT-PMP; peers are connected by hand. Seeders use
libtorrent's own ``high_performance_seed`` settings and seed mode (no initial re-hash).
A v1 torrent (SHA-1 pieces) is libtorrent's most optimised path, so the comparison is
against libtorrent at its fastest.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import warnings

import libtorrent as lt  # type: ignore[import-not-found]

QUIET = {
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True,
    "alert_mask": 0,
    "listen_interfaces": "127.0.0.1:0",
    "upload_rate_limit": 0,
    "download_rate_limit": 0,
    # TCP, not uTP: uTP's LEDBAT congestion control holds loopback transfers back.
    "enable_outgoing_utp": False,
    "enable_incoming_utp": False,
}


def make(path: str, torrent: str, piece_size: str) -> None:
    warnings.simplefilter("ignore", DeprecationWarning)
    files = lt.file_storage()
    lt.add_files(files, path)
    creator = lt.create_torrent(files, int(piece_size), flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(creator, os.path.dirname(os.path.abspath(path)))
    with open(torrent, "wb") as out:
        out.write(lt.bencode(creator.generate()))


def _add(session: lt.session, torrent: str, save_dir: str, *, seed: bool) -> lt.torrent_handle:
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = save_dir
    if seed:
        params.flags |= lt.torrent_flags.seed_mode
    return session.add_torrent(params)


def seed(torrent: str, save_dir: str) -> None:
    settings = lt.high_performance_seed()
    settings.update(QUIET)
    session = lt.session(settings)
    _add(session, torrent, save_dir, seed=True)
    print(json.dumps({"port": session.listen_port()}), flush=True)
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    while not stopped:
        time.sleep(0.2)


def download(torrent: str, save_dir: str, ports: list[str]) -> None:
    session = lt.session(dict(QUIET))
    started = time.perf_counter()
    handle = _add(session, torrent, save_dir, seed=False)
    for port in ports:
        handle.connect_peer(("127.0.0.1", int(port)))
    deadline = started + 600
    while not handle.status().is_seeding:
        if time.perf_counter() > deadline:
            raise SystemExit("libtorrent download did not finish in 600 s")
        time.sleep(0.002)
    print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "make":
        make(*rest)
    elif command == "seed":
        seed(*rest)
    elif command == "download":
        download(rest[0], rest[1], rest[2:])
    else:
        raise SystemExit(__doc__)
