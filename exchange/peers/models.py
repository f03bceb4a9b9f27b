"""Who serves what: live agents, the pieces each holds, and rights holders' web seeds."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Peer(models.Model):
    """An agent that serves pieces: its device, its endpoint, when it was last heard."""

    device = models.OneToOneField("licensing.Device", on_delete=models.CASCADE,
                                  primary_key=True, related_name="peer")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="peers")
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField()
    agent_version = models.CharField(max_length=40, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.endpoint} ({self.device_id[:10]}…)"

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class RevokedIndexCredential(models.Model):
    """An index credential its agent gave up (logging out) before it ran out. The index
    refuses it through Redis's revocation set; this row is the durable copy, which the
    minute's sync publishes again, so a Redis restarted without its AOF does not forget
    it. Dropped by the sync once the credential has expired anyway."""

    jti = models.CharField(max_length=32, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"index credential {self.jti} (until {self.expires_at:%Y-%m-%d %H:%M})"


class Holding(models.Model):
    """Which pieces of one work a peer holds, as a BitTorrent-style bitfield."""

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="holdings")
    work = models.ForeignKey("catalogue.Work", on_delete=models.CASCADE, related_name="holdings")
    bitfield = models.BinaryField(help_text="Bit i (MSB first) set: piece i is held, verified.")
    have_count = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["peer", "work"], name="holding_once_per_peer")
        ]
        indexes = [models.Index(fields=["work", "-have_count"])]

    def __str__(self) -> str:
        return f"{self.peer_id[:10]}… holds {self.have_count} of {self.work_id}"


class WebSeed(models.Model):
    """A plain HTTP server holding a work's ciphertext file (the rights holder's own
    server or CDN), as BitTorrent web seeds: agents fetch pieces with Range requests and
    verify them like any other; its bytes earn no seeding credit."""

    work = models.ForeignKey("catalogue.Work", on_delete=models.CASCADE,
                             related_name="web_seeds")
    url = models.URLField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["work", "url"], name="web_seed_once")]

    def __str__(self) -> str:
        return self.url
