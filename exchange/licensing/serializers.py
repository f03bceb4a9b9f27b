from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchange.core.fields import StrictCharField
from exchange.licensing.models import Device, Licence

# 32 bytes in canonical unpadded base64url: 42 free characters, then one whose last two
# bits are zero. The schema shows the pattern; the service still checks the key itself.
_RAW_KEY = RegexValidator(r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$",
                          "32 bytes in canonical unpadded base64url (43 characters).")


class DeviceIn(serializers.Serializer):
    name = StrictCharField(max_length=100, required=False, default="agent")
    signing_key = StrictCharField(validators=[_RAW_KEY],
                                  help_text="Ed25519 public key, raw, base64url.")
    kem_key = StrictCharField(validators=[_RAW_KEY], help_text="X25519 public key, raw, base64url.")


class DeviceOut(serializers.ModelSerializer):
    class Meta:
        model = Device
        fields = ["device_id", "name", "signing_public", "kem_public", "created_at", "revoked_at"]
        read_only_fields = fields


class LicenceOut(serializers.ModelSerializer):
    work = serializers.UUIDField(source="work_id")
    device = serializers.CharField(source="device_id")
    watermark_payload = serializers.SerializerMethodField()
    purchase = serializers.SerializerMethodField()

    class Meta:
        model = Licence
        fields = [
            "id",
            "work",
            "purchase",
            "device",
            "uses",
            "byte_allowance",
            "issued_at",
            "expires_at",
            "revoked_at",
            "watermark_payload",
            "token",
            "origin",
        ]
        read_only_fields = fields
        extra_kwargs = {"origin": {"help_text": "For a licence re-issued to another of the "
                                                "buyer's devices: the purchased licence."}}

    @extend_schema_field({"type": "string", "format": "uuid", "nullable": True})
    def get_purchase(self, licence: Licence) -> str | None:
        """The purchase that paid for it (the agent keeps it with the licence); for a
        re-issue to another device, its origin's."""
        paid = licence.origin if licence.origin_id is not None else licence
        purchase = getattr(paid, "purchase", None)
        return str(purchase.pk) if purchase is not None else None

    def get_watermark_payload(self, licence: Licence) -> str:
        return str(licence.watermark_payload)  # a string: JSON numbers lose bits past 2**53


class RevocationListOut(serializers.Serializer):
    version = serializers.IntegerField()
    issued_at = serializers.DateTimeField()
    next_update = serializers.DateTimeField()
    token = serializers.CharField()


class ManifestOut(serializers.Serializer):
    work = serializers.UUIDField()
    merkle_root = serializers.CharField()
    piece_size = serializers.IntegerField()
    piece_count = serializers.IntegerField()
    ciphertext_size = serializers.IntegerField()
    token = serializers.CharField()


class EquivocationIn(serializers.Serializer):
    first = StrictCharField(max_length=8 * 1024 * 1024,
                            help_text="The revocation list token the agent kept.")
    second = StrictCharField(max_length=8 * 1024 * 1024,
                             help_text="The different list it was later offered under the "
                                       "same version.")


class EquivocationOut(serializers.Serializer):
    version = serializers.IntegerField()
    reports = serializers.IntegerField()
    reported_at = serializers.DateTimeField()


# --- one library on every device (exchange/licensing/library.py) ---------------------

class ReissueIn(serializers.Serializer):
    device = StrictCharField(max_length=64,
                             help_text="The device (one of yours) to issue a licence to.")


class MoveIn(serializers.Serializer):
    to_device = StrictCharField(max_length=64,
                                help_text="The device (one of yours) that takes this "
                                          "licence's slot.")


class LibraryLicenceOut(serializers.Serializer):
    id = serializers.UUIDField(source="pk")
    device = serializers.CharField(source="device_id")
    device_name = serializers.CharField(source="device.name")
    device_revoked = serializers.SerializerMethodField()
    origin = serializers.UUIDField(source="origin_id", allow_null=True,
                                   help_text="The purchased licence, for a re-issue.")
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    takes_slot = serializers.SerializerMethodField(
        help_text="Live (not revoked, not expired, on a device that is not revoked): it "
                  "counts against the work's device limit.")

    def get_device_revoked(self, licence: Licence) -> bool:
        return licence.device.revoked_at is not None

    def get_takes_slot(self, licence: Licence) -> bool:
        return bool(self.context["slots"].get(licence.pk, False))


class LibraryWorkOut(serializers.Serializer):
    work = serializers.UUIDField(source="work.pk")
    title = serializers.CharField(source="work.title")
    owner = serializers.CharField(source="work.owner.username")
    device_limit = serializers.IntegerField(source="work.device_limit")
    devices_used = serializers.IntegerField(source="slots_used")
    licences = LibraryLicenceOut(many=True)
