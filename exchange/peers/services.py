"""Announcements and heartbeats from agents, and rights holders' web seeds.

Checked here against the database either way; stored in the live index in Redis where it
is on (``live_index``), as the fast path stores them, or in the database otherwise.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.catalogue.models import Work, WorkStatus
from exchange.core.errors import ServiceError
from exchange.core.rate_limits import Rate, check
from exchange.licensing.models import Device
from exchange.peers import live_index
from exchange.peers.bitfields import (
    BitfieldError,
    bitfield_count,
    bitfield_decode,
    bitfield_encode,
)
from exchange.peers.models import Holding, Peer, WebSeed
from peerindex import schema, store

MAX_HOLDINGS_PER_ANNOUNCE = 1000


@dataclass(frozen=True)
class Announced:
    work_id: str
    bitfield: str


def _own_device(user: User, device_id: str) -> Device:
    device = Device.objects.filter(pk=str(device_id)[:64], user=user).first()
    if device is None:
        raise ServiceError(_("No such device on your account."), code="unknown_device",
                           field="device")
    if device.revoked_at is not None:
        raise ServiceError(_("This device is revoked."), code="device_revoked", status_code=409,
                           field="device")
    return device


def _check_endpoint(host: str, port: int, source: str) -> str:
    """The host peers will connect to. By default it must be the address the announce
    came from, so nobody can point buyers' agents at a third party's server."""
    if not 1 <= port <= 65535:
        raise ServiceError(_("The port must be 1 to 65535."), code="invalid", field="port")
    chosen = host or source
    try:
        ipaddress.ip_address(chosen)
    except ValueError:
        if not settings.PEERS_ALLOW_ANNOUNCED_HOST:
            raise ServiceError(_("Announce an IP address."), code="invalid",
                               field="host") from None
    if chosen != source and not settings.PEERS_ALLOW_ANNOUNCED_HOST:
        raise ServiceError(_("Announced host %(host)s is not the address you connect from "
                             "(%(source)s).") % {"host": chosen, "source": source},
                           code="host_mismatch", field="host")
    return chosen


def peer_announce(*, user: User, device_id: str, host: str, port: int, source: str,
                  holdings: list[Announced], replace: bool, version: str = "") -> Peer:
    """Record a peer's endpoint and the pieces it holds; also a heartbeat.

    ``replace`` drops holdings not listed (a full announce at start-up); otherwise the
    listed works are updated and the others kept. The same announce twice is harmless.
    """
    device = _own_device(user, device_id)
    endpoint_host = _check_endpoint(host, port, source)
    if len(holdings) > MAX_HOLDINGS_PER_ANNOUNCE:
        raise ServiceError(_("At most %(max)s works per announce.")
                           % {"max": MAX_HOLDINGS_PER_ANNOUNCE},
                           code="invalid", field="holdings")
    parsed: dict[uuid.UUID, bytes] = {}
    works = _ready_works([h.work_id for h in holdings])
    for index, holding in enumerate(holdings):
        work = works.get(holding.work_id)
        if work is None:
            raise ServiceError(_("No work %(work)s on sale.") % {"work": holding.work_id},
                               code="unknown_work",
                               field=f"holdings[{index}].work")
        try:
            parsed[work.pk] = bitfield_decode(holding.bitfield, work.package.piece_count)
        except BitfieldError as exc:
            raise ServiceError(str(exc), code="invalid",
                               field=f"holdings[{index}].bitfield") from exc
    now = timezone.now()
    if live_index.enabled():
        try:
            return _announce_live(user=user, device=device, host=endpoint_host, port=port,
                                  parsed=parsed, replace=replace, version=version, now=now)
        except live_index.UNAVAILABLE as exc:
            live_index.unavailable("announces go", exc)
    with transaction.atomic():
        peer, created = Peer.objects.update_or_create(
            device=device,
            defaults={"user": user, "host": endpoint_host, "port": port, "last_seen_at": now,
                      "agent_version": version[:40]},
        )
        if replace:
            Holding.objects.filter(peer=peer).exclude(work_id__in=parsed).delete()
        for work_id, raw in parsed.items():
            count = bitfield_count(raw)
            if count == 0:
                Holding.objects.filter(peer=peer, work_id=work_id).delete()
                continue
            Holding.objects.update_or_create(peer=peer, work_id=work_id,
                                             defaults={"bitfield": raw, "have_count": count})
        if created:
            audit_record(actor=user, action="peer.register", target=peer,
                         data={"endpoint": peer.endpoint})
    return peer


def _announce_live(*, user: User, device: Device, host: str, port: int,
                   parsed: dict[uuid.UUID, bytes], replace: bool, version: str,
                   now: dt.datetime) -> Peer:
    """The announce into the live index, as the fast path makes it (the durable record
    follows with the next flush); the peer returned is not saved."""
    held = []
    pieces = dict(Work.objects.filter(pk__in=list(parsed))
                  .values_list("pk", "package__piece_count"))
    for work_id, raw in parsed.items():
        count = bitfield_count(raw)
        full = count == pieces[work_id]
        held.append(store.Held(str(work_id), count,
                               "" if full or not count else bitfield_encode(raw)))
    store.announce(live_index.client(), device=device.device_id, user=user.pk, host=host,
                   port=port, version=version[:40], held=held, replace=replace,
                   now=int(now.timestamp()), peer_ttl=settings.PEER_TIMEOUT_SECONDS)
    return Peer(device=device, user=user, host=host, port=port, last_seen_at=now,
                agent_version=version[:40])


def _heartbeat_live(*, user: User, device: Device) -> Peer:
    conn = live_index.client()
    now = timezone.now()
    if store.heartbeat(conn, [device.device_id], now=int(now.timestamp()),
                       peer_ttl=settings.PEER_TIMEOUT_SECONDS):
        raise ServiceError(_("Announce before sending heartbeats."), code="not_announced",
                           status_code=409, field="device")
    record = store.peer_record(conn, device.device_id)
    return Peer(device=device, user=user, host=record.host if record else "",
                port=record.port if record else 0, last_seen_at=now)


def _ready_works(ids: list[str]) -> dict[str, Work]:
    keys = []
    for value in ids:
        try:
            keys.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    works = Work.objects.select_related("package").filter(pk__in=keys, status=WorkStatus.READY)
    return {str(w.pk): w for w in works}


def peer_heartbeat(*, user: User, device_id: str) -> Peer:
    device = _own_device(user, device_id)
    if live_index.enabled():
        try:
            return _heartbeat_live(user=user, device=device)
        except live_index.UNAVAILABLE as exc:
            live_index.unavailable("heartbeats go", exc)
    updated = Peer.objects.filter(device=device).update(last_seen_at=timezone.now())
    if not updated:
        raise ServiceError(_("Announce before sending heartbeats."), code="not_announced",
                           status_code=409, field="device")
    return Peer.objects.get(device=device)


def index_credential_issue(*, user: User, device_id: str) -> dict[str, object]:
    """A credential for the fast path, if the platform offers one."""
    if not live_index.offered():
        raise ServiceError(_("This platform does not offer the index fast path: use "
                             "/api/v1/peers/ for announces and heartbeats."),
                           code="index_not_offered", status_code=404)
    if not user.is_active:
        raise ServiceError(_("This account is disabled."), code="account_disabled",
                           status_code=403)
    device = _own_device(user, device_id)
    # an agent asks twice an hour per device; a bound keeps a stolen API token, or a
    # looping agent, from minting credentials without end (it then uses the platform)
    check("peers.index_credential", f"{user.pk}:{device.pk}",
          Rate.parse(settings.INDEX_CREDENTIAL_RATE))
    token, expires = live_index.credential_mint(user=user, device=device)
    return {"token": token, "expires_at": dt.datetime.fromtimestamp(expires, tz=dt.UTC),
            "index_url": settings.INDEX_URL, "interval": settings.PEER_TIMEOUT_SECONDS // 3,
            "reannounce": schema.REANNOUNCE_SECONDS}


def index_credential_revoke(*, user: User, token: str) -> None:
    """Refuse ``token`` from now on, if it is one of ``user``'s; anything else is
    ignored alike, so the answer tells nobody whose a token is."""
    live_index.credential_revoke(token, user=user)


def web_seed_add(*, work: Work, actor: User, url: str) -> WebSeed:
    if not url.startswith(("http://", "https://")):
        raise ServiceError(_("A web seed is an http(s) URL."), code="invalid", field="url")
    with transaction.atomic():
        seed, created = WebSeed.objects.get_or_create(work=work, url=url)
        if created:
            audit_record(actor=actor, action="web_seed.add", target=seed, data={"url": url})
            live_index.work_publish(work)
    return seed


def web_seed_remove(*, seed: WebSeed, actor: User) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="web_seed.remove", target=seed, data={"url": seed.url})
        seed.delete()
        live_index.work_publish(seed.work)
