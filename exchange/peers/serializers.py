from __future__ import annotations

from rest_framework import serializers

from exchange.core.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from exchange.peers.bitfields import bitfield_encode
from exchange.peers.models import Holding, WebSeed


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


class SourceOut(serializers.ModelSerializer):
    peer_id = serializers.CharField(source="peer.device_id")
    url = serializers.CharField(source="peer.endpoint")
    bitfield = serializers.SerializerMethodField()
    have = serializers.IntegerField(source="have_count")
    last_seen_at = serializers.DateTimeField(source="peer.last_seen_at")

    class Meta:
        model = Holding
        fields = ["peer_id", "url", "bitfield", "have", "last_seen_at"]
        read_only_fields = fields

    def get_bitfield(self, holding: Holding) -> str:
        return bitfield_encode(bytes(holding.bitfield))


class WebSeedIn(serializers.Serializer):
    url = serializers.URLField(max_length=500)


class WebSeedOut(serializers.ModelSerializer):
    class Meta:
        model = WebSeed
        fields = ["id", "url", "created_at"]
        read_only_fields = fields
