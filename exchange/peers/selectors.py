"""Where to get a work: live peers holding its pieces, best first, and its web seeds."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from exchange.catalogue.models import Work
from exchange.peers.models import Holding, WebSeed


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
