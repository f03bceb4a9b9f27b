from __future__ import annotations

from rest_framework import serializers

from exchange.core.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from exchange.peers.models import WebSeed


class HoldingIn(serializers.Serializer):
    work = StrictCharField(max_length=64)
    bitfield = StrictCharField(max_length=200_000,
                               help_text="Base64 bitfield, MSB first (BitTorrent order).")


class AnnounceIn(serializers.Serializer):
    device = StrictCharField(max_length=64)
    host = StrictCharField(max_length=255, required=False, allow_blank=True, default="",
                           help_text="Defaults to the address the request comes from.")
    port = StrictIntegerField(min_value=1, max_value=65535)
    holdings = HoldingIn(many=True, required=False, default=list)
    replace = StrictBooleanField(required=False, default=False,
                                 help_text="Drop holdings not listed here.")
    version = StrictCharField(max_length=40, required=False, default="")


class HeartbeatIn(serializers.Serializer):
    device = StrictCharField(max_length=64)


class PeerOut(serializers.Serializer):
    peer_id = serializers.CharField(source="device_id")
    url = serializers.CharField(source="endpoint")
    last_seen_at = serializers.DateTimeField()


class SourceOut(serializers.Serializer):
    peer_id = serializers.CharField()
    url = serializers.CharField()
    bitfield = serializers.CharField(help_text="Base64 bitfield, MSB first.")
    have = serializers.IntegerField()
    last_seen_at = serializers.DateTimeField()


class IndexCredentialIn(serializers.Serializer):
    device = StrictCharField(max_length=64)


class IndexCredentialOut(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Bearer` to the index.")
    expires_at = serializers.DateTimeField()
    index_url = serializers.URLField()
    interval = serializers.IntegerField(help_text="Seconds between heartbeats.")
    reannounce = serializers.IntegerField(
        help_text="Seconds between full announces (replace), so holdings never expire.")


class IndexCredentialRevokeIn(serializers.Serializer):
    token = StrictCharField(max_length=512)


class WebSeedIn(serializers.Serializer):
    url = serializers.URLField(max_length=500)


class WebSeedOut(serializers.ModelSerializer):
    class Meta:
        model = WebSeed
        fields = ["id", "url", "created_at"]
        read_only_fields = fields
