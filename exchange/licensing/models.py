"""The platform's side of licensing: its signing keys, devices, packaged works, licences
and revocation lists. The cryptography itself is in ``licensing.core``."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from licensing.core.keyring import KeyState


class PlatformKey(models.Model):
    """One Ed25519 signing key. The private half is stored wrapped under the key-encryption
    key (``PEERMARK_KEY_ENCRYPTION_KEY``); it is never stored, shown or logged in clear."""

    class State(models.TextChoices):
        ACTIVE = KeyState.ACTIVE.value, "Active (signs)"
        VERIFY_ONLY = KeyState.VERIFY_ONLY.value, "Verify-only"
        RETIRED = KeyState.RETIRED.value, "Retired"

    kid = models.CharField(max_length=64, primary_key=True)
    state = models.CharField(max_length=12, choices=State.choices)
    private_wrapped = models.BinaryField(editable=False)
    public_jwk = models.JSONField()
    published_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["published_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="active"), name="platform_key_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kid[:12]}… ({self.state})"


class Device(models.Model):
    """An agent install: the public halves of its keys, registered to its user."""

    device_id = models.CharField(
        max_length=64, primary_key=True, help_text="SHA-256 thumbprint of both public keys."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="devices"
    )
    name = models.CharField(max_length=100)
    signing_public = models.CharField(max_length=64, help_text="Ed25519, base64url.")
    kem_public = models.CharField(max_length=64, help_text="X25519, base64url.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.device_id[:10]}…)"


class WorkPackage(models.Model):
    """A work's ciphertext and manifest. Its keys are stored wrapped, never in clear."""

    work = models.OneToOneField(
        "catalogue.Work", on_delete=models.PROTECT, related_name="package", primary_key=True
    )
    manifest = models.JSONField(help_text="The manifest's claims, unsigned.")
    root = models.CharField(max_length=64, help_text="Merkle root of the ciphertext pieces.")
    piece_size = models.PositiveIntegerField()
    piece_count = models.PositiveIntegerField()
    ciphertext_size = models.BigIntegerField()
    master_sha256 = models.CharField(max_length=64)
    ciphertext_path = models.CharField(
        max_length=255, help_text="Relative to the ciphertext folder."
    )
    content_key_wrapped = models.BinaryField(editable=False)
    watermark_key_wrapped = models.BinaryField(editable=False)
    # Sealed delivery (docs/SEALED.md): the pieces encrypt the sealed container, kept here
    # (relative to the masters folder, never served) for the marking audit; its table size
    # sizes every licence's personal table. Both empty for a marked work.
    container_path = models.CharField(max_length=255, blank=True,
                                      help_text="Relative to the masters folder.")
    table_size = models.PositiveIntegerField(null=True, blank=True,
                                             help_text="Entries in the sealed noise table.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"package of {self.work_id}"

    @property
    def sealed(self) -> bool:
        return self.table_size is not None


def _signed(payload: int) -> int:
    return payload - 2**63


class Licence(models.Model):
    """A licence token issued to one device for one work."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, help_text="The token's jti."
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="licences"
    )
    device = models.ForeignKey(Device, on_delete=models.PROTECT, related_name="licences")
    work = models.ForeignKey("catalogue.Work", on_delete=models.PROTECT, related_name="licences")
    # The 64-bit unsigned payload, stored shifted into a signed bigint so that the
    # unique index covers all 2**64 values.
    watermark_stored = models.BigIntegerField(unique=True)
    uses = models.JSONField()
    byte_allowance = models.BigIntegerField()
    kid = models.CharField(max_length=64, db_index=True)
    token = models.TextField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)
    revocation_reason = models.CharField(max_length=200, blank=True)
    # A licence re-issued to another of the buyer's devices ("one library on every
    # device", docs/MEMBERS.md) names the licence its purchase issued: always that first
    # one, so a work's licences form one family whose purchase paid for them all.
    origin = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reissues",
        help_text="The purchased licence this one was re-issued from (none for a purchase's own).",
    )

    class Meta:
        ordering = ["-issued_at"]
        indexes = [models.Index(fields=["kid", "expires_at"]),
                   models.Index(fields=["buyer", "work"])]

    def __str__(self) -> str:
        return f"licence {self.pk}"

    @property
    def watermark_payload(self) -> int:
        return self.payload_of(self.watermark_stored)

    @staticmethod
    def payload_of(stored: int) -> int:
        """The 64-bit payload a stored (signed) column value stands for."""
        return stored + 2**63

    @staticmethod
    def stored_payload(payload: int) -> int:
        return _signed(payload)


class RevocationList(models.Model):
    """Every revocation list published, newest version last; agents refuse rollbacks."""

    version = models.PositiveIntegerField(primary_key=True)
    kid = models.CharField(max_length=64)
    token = models.TextField()
    issued_at = models.DateTimeField()
    next_update = models.DateTimeField()
    licence_count = models.PositiveIntegerField()
    device_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"revocation list v{self.version}"


class RevocationEquivocation(models.Model):
    """Two different revocation lists signed under one version, as an agent reported them.

    The platform publishes one list per version (``RevocationList``'s primary key), so
    such a pair is evidence that a signing key is compromised or that forged-but-signed
    lists are served to some peers. Both tokens are kept verbatim for admins; one row
    per distinct pair, however many agents report it.
    """

    pair_sha256 = models.CharField(max_length=64, unique=True)
    version = models.PositiveIntegerField()
    first_token = models.TextField()
    second_token = models.TextField()
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reports = models.PositiveIntegerField(default=1)
    reported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-reported_at"]

    def __str__(self) -> str:
        return f"revocation list v{self.version}: two different lists"
