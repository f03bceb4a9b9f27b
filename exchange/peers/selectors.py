"""Where to get a work: live peers holding its pieces, best first, and its web seeds; and
how many peers are live, for the dashboards."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from exchange.catalogue.models import Work
from exchange.peers import live_index
from exchange.peers.bitfields import bitfield_encode
from exchange.peers.models import Holding, Peer, WebSeed
from licensing.core.bitfield import bitfield_full
from peerindex import store

#: the most sources one lookup returns, in either store
MAX_SOURCES = 200


@dataclass(frozen=True)
class SourceRow:
    """A source as the API gives it, from whichever store holds the index."""

    peer_id: str
    url: str
    bitfield: str
    have: int
    last_seen_at: dt.datetime


def live_since(now: dt.datetime | None = None) -> dt.datetime:
    """A peer silent since before this is offline."""
    return (now or timezone.now()) - dt.timedelta(seconds=settings.PEER_TIMEOUT_SECONDS)


def sources_for(work: Work, *, now: dt.datetime | None = None) -> QuerySet[Holding]:
    """Live, unrevoked peers holding pieces of ``work``: most pieces first, then the
    freshest heartbeat (the most useful, most likely reachable source first)."""
    return (
        Holding.objects.select_related("peer")
        .filter(work=work, have_count__gt=0, peer__last_seen_at__gte=live_since(now),
                peer__device__revoked_at__isnull=True)
        .order_by("-have_count", "-peer__last_seen_at", "peer_id")
    )


def sources_list(work: Work) -> list[SourceRow]:
    """Up to ``MAX_SOURCES`` sources, best first: from the live index where it is on
    (chosen as the fast path chooses), from the database otherwise, or while Redis is
    away (the durable record, a flush behind)."""
    if live_index.enabled():
        try:
            return _live_sources(work)
        except live_index.UNAVAILABLE as exc:
            live_index.unavailable("sources come", exc)
    return [SourceRow(h.peer.device_id, h.peer.endpoint, bitfield_encode(bytes(h.bitfield)),
                      h.have_count, h.peer.last_seen_at)
            for h in sources_for(work)[:MAX_SOURCES]]


def _live_sources(work: Work) -> list[SourceRow]:
    pieces = work.package.piece_count
    full = bitfield_encode(bitfield_full(pieces))
    found = store.sources(live_index.client(), str(work.pk), pieces=pieces, want=MAX_SOURCES)
    return [SourceRow(s.peer_id, s.url, s.bitfield or full, s.have,
                      dt.datetime.fromtimestamp(s.record.seen, tz=dt.UTC)) for s in found]


def live_endpoints(device_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
    """The peer server's host and port of each of ``device_ids`` that is live now
    (heard within the peer timeout), from whichever store holds the index."""
    if live_index.enabled():
        try:
            return {device: (record.host, record.port) for device, record
                    in store.peer_records(live_index.client(), device_ids).items()}
        except live_index.UNAVAILABLE as exc:
            live_index.unavailable("live devices come", exc)
    return {device: (host, port) for device, host, port in
            Peer.objects.filter(device_id__in=list(device_ids), last_seen_at__gte=live_since())
            .values_list("device_id", "host", "port")}


def web_seeds_for(work: Work) -> QuerySet[WebSeed]:
    return WebSeed.objects.filter(work=work).order_by("created_at")


def live_seeders_by_work(work_ids: Iterable[uuid.UUID], *,
                         now: dt.datetime | None = None) -> dict[uuid.UUID, int]:
    """How many live, unrevoked peers hold every piece of each work: the copies a buyer
    could fetch whole right now (the same liveness rule as ``sources_for``)."""
    rows = (Holding.objects
            .filter(work_id__in=list(work_ids), peer__last_seen_at__gte=live_since(now),
                    peer__device__revoked_at__isnull=True,
                    have_count__gte=F("work__package__piece_count"))
            .values("work_id").annotate(seeders=Count("peer", distinct=True)).order_by())
    return {row["work_id"]: int(row["seeders"]) for row in rows}


def peers_live_count(*, now: dt.datetime | None = None) -> int:
    """Agents heard from within the peer timeout, on devices not revoked."""
    return Peer.objects.filter(last_seen_at__gte=live_since(now),
                               device__revoked_at__isnull=True).count()
