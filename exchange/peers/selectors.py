"""Where to get a work: live peers holding its pieces, best first, and its web seeds; and
how many peers are live, for the dashboards."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Count, F, QuerySet
from django.utils import timezone

from exchange.catalogue.models import Work
from exchange.peers.models import Holding, Peer, WebSeed


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
