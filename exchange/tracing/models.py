"""What each trace of a suspect copy found, kept as evidence for the rights holder."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TraceOutcome(models.TextChoices):
    MARKED = "marked", _("Watermark read: licence named")
    DELIVERED_COPY = "delivered", _("Exact delivered copy: licence named by its receipt")
    MASTER = "master", _("Exact copy of the master: no licence can be named")
    NO_MARK = "no_mark", _("Work recognised, no watermark found")
    UNKNOWN = "unknown", _("Not one of your works")


class TraceReport(models.Model):
    """One suspect copy traced by its work's owner. The copy itself is not kept: its
    SHA-256 and size are, so the report can be matched to the file later."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="trace_reports")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    suspect_name = models.CharField(max_length=255, blank=True)
    suspect_sha256 = models.CharField(max_length=64)
    suspect_size = models.BigIntegerField()
    outcome = models.CharField(max_length=10, choices=TraceOutcome.choices)
    work = models.ForeignKey("catalogue.Work", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="trace_reports")
    licences = models.ManyToManyField("licensing.Licence", blank=True,
                                      related_name="trace_reports")
    details = models.JSONField(default=dict, blank=True,
                               help_text="How it was found: bit errors, score, alignment.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"trace #{self.pk}: {self.get_outcome_display()}"


class MasterFingerprint(models.Model):
    """A master's perceptual fingerprint (`exchange.tracing.perceptual`), made once and
    kept: a trace compares the copy with every image or audio work its owner has.

    An image's is its 64-bit hash; an audio master's, its frames' bits (about 170 bytes a
    second, so some 50 KB for a five-minute song).
    """

    work = models.OneToOneField("catalogue.Work", primary_key=True, on_delete=models.CASCADE,
                                related_name="fingerprint")
    perceptual_hash = models.CharField(max_length=16, blank=True,
                                       help_text="An image's: 64 bits, hex.")
    audio_print = models.BinaryField(blank=True, default=b"",
                                     help_text="An audio master's: `AudioPrint.to_bytes`.")

    def __str__(self) -> str:
        return f"{self.work_id}: {self.perceptual_hash}"


class MarkingVerdict(models.TextChoices):
    MATCHES = "matches", _("The copy is the one the platform computes")
    DIFFERS = "differs", _("The copy differs from the one the platform computes")
    SKIPPED_MARK = "skipped", _("Reported unmarked, but the platform can mark this master")


class MarkingCheck(models.Model):
    """The platform's own recomputation of one delivered copy, compared with its receipt.

    The agent marks copies on the buyer's machine, where a tampered agent could skip it
    (docs/THREAT_MODEL.md, "The known limit"). Marking is deterministic for a given
    master, key, payload and library version, so the platform can make the same copy and
    compare its SHA-256 with the one the device signed into its receipt.
    """

    receipt = models.OneToOneField("metering.Receipt", on_delete=models.PROTECT,
                                   related_name="marking_check")
    checked_at = models.DateTimeField(auto_now_add=True, db_index=True)
    verdict = models.CharField(max_length=8, choices=MarkingVerdict.choices)
    expected_sha256 = models.CharField(max_length=64)
    detail = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.receipt_id}: {self.verdict}"
