"""``get`` and ``serve``: the commands that move pieces (they load aiohttp)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import mimetypes
import re
import sys
import time
from pathlib import Path

from tqdm import tqdm

from licensing.core import (
    DocumentKind,
    ExpiredError,
    Licence,
    LicensingError,
    Manifest,
    read_licence,
    read_manifest,
)
from peers.agent.bitfield import bitfield_decode
from peers.agent.cli import _print, buy
from peers.agent.context import Agent, AgentError
from peers.agent.daemon import Daemon, ServeOptions
from peers.agent.deliver import DeliveryError, deliver, receipt_for
from peers.agent.download import Downloader, DownloadError, Progress, Source
from peers.agent.gnutella import GnutellaNode, known_neighbours, sources_from_hits
from peers.agent.library import OwnedLicence
from peers.agent.platform import PlatformError, PlatformUnreachableError
from peers.agent.receipts import add_served, queue_receipt, send_receipt
from peers.agent.store import PieceStore, StoreError, WorkStore


def _manifest_for(agent: Agent, owned: OwnedLicence, root: bytes) -> tuple[Manifest, str]:
    """The work's signed manifest: the one bought with the licence, or a fresh one.

    Offline with an expired manifest token, the manifest is still trusted if its
    signature holds and its Merkle root is the one the (platform-signed, current)
    licence names: the licence vouches for exactly that content.
    """
    ring = agent.trust.keyring()
    now = int(time.time())
    token = owned.manifest
    try:
        return read_manifest(token, keyring=ring, now=now), token
    except ExpiredError:
        pass
    try:
        token = str(agent.platform.manifest(owned.work_id)["token"])
        return read_manifest(token, keyring=ring, now=now), token
    except PlatformUnreachableError:
        _kid, claims = ring.verify(owned.manifest, DocumentKind.MANIFEST)
        manifest = Manifest.from_claims(claims)
        if manifest.root != root:
            raise AgentError("The stored manifest does not match the licence.") from None
        return manifest, owned.manifest


def _platform_sources(agent: Agent, work_id: str, piece_count: int) -> tuple[list[Source],
                                                                              list[str]]:
    body = agent.platform.sources(work_id)
    sources = []
    for item in body["results"]:
        try:
            bits = bitfield_decode(item["bitfield"], piece_count)
        except ValueError:
            continue
        sources.append(Source(peer_id=item["peer_id"], url=item["url"], bitfield=bits))
    return sources, list(body["web_seeds"])


async def _gnutella_sources(agent: Agent, work_id: str, piece_count: int) -> list[Source]:
    """Without the platform: ask known peers, Gnutella-style (Query flooding, TTL 4)."""
    node = GnutellaNode(peer_id=agent.device.device_id, url="", holdings=lambda _w: None)
    try:
        for neighbour in await known_neighbours(agent.config.known_peers):
            node.add_neighbour(neighbour)
        if not node.neighbours:
            raise AgentError("The platform is unreachable and no known peer answers "
                             "(add some with `serve --peer URL` or the config's known_peers).")
        return sources_from_hits(await node.query(work_id), piece_count)
    finally:
        await node.close()


def _destination(agent: Agent, args: argparse.Namespace, owned: OwnedLicence) -> Path:
    if args.out is not None:
        return Path(args.out)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", owned.title).strip("-")[:60] or "work"
    extension = mimetypes.guess_extension(owned.content_type) or ""
    return agent.home.library_dir / f"{owned.work_id}-{stem}{extension}"


def cmd_get(agent: Agent, args: argparse.Namespace) -> int:
    device = agent.device  # no keys yet: "run init first"
    agent.home.ensure()
    online = bool(agent.config.token) and agent.refresh_trust()
    owned = agent.licences.for_work(args.work)
    if owned is None:
        if args.no_buy:
            raise AgentError("You hold no licence for this work (and --no-buy was given).")
        agent.require_login()
        if not online:
            raise AgentError("You hold no licence for this work and the platform is "
                             "unreachable, so it cannot be bought now.")
        owned = buy(agent, args.work)
        print(f"Bought “{owned.title}” (licence {owned.licence_id}).", file=sys.stderr)
    try:
        licence = read_licence(owned.token, keyring=agent.trust.keyring(), now=int(time.time()),
                               device_id=device.device_id)
        agent.trust.revocations().check_licence(licence)
    except LicensingError as exc:
        raise AgentError(f"Your licence cannot be used: {exc}") from exc
    manifest, manifest_token = _manifest_for(agent, owned, licence.manifest_root)
    store = PieceStore(agent.home.store_dir)
    run: dict[str, object] = {"pieces_fetched": 0, "dropped": []}
    try:
        work = store.add_verified(manifest, manifest_token)
        run["held_before"] = work.held_count
        if not work.complete:
            run.update(_download(agent, args, owned, work, licence=licence, online=online))
        destination = _destination(agent, args, owned)
        try:
            delivery = deliver(store=work, manifest=manifest, licence=licence,
                               keys=licence.unwrap_keys(device), destination=destination,
                               content_type=owned.content_type)
        except DeliveryError as exc:
            raise AgentError(f"Could not write the copy: {exc}") from exc
    finally:
        store.close()
    served = add_served(agent, owned.licence_id, {})
    token = receipt_for(delivery, device=device, licence=licence, served_bytes=served,
                        now=int(time.time()))
    queue_receipt(agent, owned.licence_id, token)
    outcome = send_receipt(agent, owned.licence_id) if online else "pending"
    mark = "watermarked for your licence" if delivery.marked else f"not marked ({delivery.detail})"
    _print(args, "\n".join([
        f"Wrote {delivery.path} ({delivery.size:,} bytes, {mark}).",
        f"SHA-256 {delivery.sha256_hex}",
        f"Receipt: {outcome}.",
    ]), {"path": str(delivery.path), "sha256": delivery.sha256_hex, "marked": delivery.marked,
         "receipt": outcome, "licence_id": owned.licence_id, "served": served,
         "pieces": manifest.piece_count, **run})
    return 0


def _download(agent: Agent, args: argparse.Namespace, owned: OwnedLicence, work: WorkStore,
              *, licence: Licence, online: bool) -> dict[str, object]:
    count = work.manifest.piece_count
    web_seeds: list[str] = []
    if online:
        try:
            sources, web_seeds = _platform_sources(agent, owned.work_id, count)
        except PlatformUnreachableError:
            online = False
    if not online:
        sources = asyncio.run(_gnutella_sources(agent, owned.work_id, count))
    if not sources and not web_seeds:
        raise AgentError("Nobody is sharing this work right now; try again later.")
    total = work.manifest.ciphertext_size
    bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=owned.title[:30],
               disable=args.json or not sys.stderr.isatty(), leave=False)

    def progress(step: Progress) -> None:
        bar.n = step.bytes_done
        bar.refresh()

    limit = args.limit_rate or agent.config.download_limit_bps or None
    downloader = Downloader(work=work, licence=licence,
                            licence_token=owned.token, device=agent.device, sources=sources,
                            web_seeds=web_seeds, rate_limit_bps=limit, progress=progress)
    try:
        result = asyncio.run(downloader.run())
    except DownloadError as exc:
        add_served(agent, owned.licence_id, dict(exc.result.bytes_by_peer))
        raise AgentError(f"The download stopped: {exc}. Run `get` again to resume.") from exc
    except StoreError as exc:
        raise AgentError(f"Cannot store pieces: {exc}") from exc
    finally:
        bar.close()
    add_served(agent, owned.licence_id, dict(result.bytes_by_peer))
    for dropped in result.dropped:
        print(f"dropped a source: {dropped.source[:16]}… ({dropped.reason})", file=sys.stderr)
    return {"pieces_fetched": len(result.pieces_fetched),
            "dropped": [{"source": d.source, "reason": d.reason} for d in result.dropped],
            "web_seed_bytes": result.web_seed_bytes}


def cmd_serve(agent: Agent, args: argparse.Namespace) -> int:
    agent.require_login()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per platform call
    if args.peer:
        agent.config.known_peers = sorted(set(agent.config.known_peers) | set(args.peer))
        agent.home.save_config(agent.config)
    options = ServeOptions(
        host=args.host or agent.config.listen_host,
        port=args.port if args.port is not None else agent.config.listen_port,
        upload_limit_bps=args.limit_rate or agent.config.upload_limit_bps or None,
        import_from=args.import_from, known_peers=list(agent.config.known_peers),
    )
    try:
        asyncio.run(Daemon(agent, options).run())
    except OSError as exc:
        raise AgentError(f"Cannot listen on {options.host}:{options.port}: {exc}") from exc
    except PlatformError as exc:
        raise AgentError(f"The platform refused this agent: {exc}") from exc
    return 0
