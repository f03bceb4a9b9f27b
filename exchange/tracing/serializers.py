from __future__ import annotations

from typing import Any, TypedDict

from rest_framework import serializers

from exchange.licensing.models import Licence
from exchange.tracing.models import TraceOutcome, TraceReport
from exchange.tracing.selectors import licence_served_by


class TraceIn(serializers.Serializer):
    file = serializers.FileField(help_text="The suspect copy.")


class ServedOut(serializers.Serializer):
    peer = serializers.CharField(source="serving_user__username")
    bytes = serializers.IntegerField()


class ServedRow(TypedDict):
    """What ``ServedOut`` renders."""

    peer: str
    bytes: int


class TracedLicenceOut(serializers.Serializer):
    id = serializers.UUIDField()
    buyer = serializers.CharField(source="buyer.username")
    device = serializers.CharField(source="device_id")
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked = serializers.SerializerMethodField()
    served_by = serializers.SerializerMethodField()

    def get_revoked(self, licence: Licence) -> bool:
        return licence.revoked_at is not None

    def get_served_by(self, licence: Licence) -> list[ServedRow]:
        return list(ServedOut(licence_served_by(licence), many=True).data)


class TraceReportOut(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    suspect_name = serializers.CharField()
    suspect_sha256 = serializers.CharField()
    suspect_size = serializers.IntegerField()
    outcome = serializers.ChoiceField(choices=TraceOutcome.choices)
    outcome_display = serializers.CharField(source="get_outcome_display")
    work = serializers.UUIDField(source="work_id", allow_null=True)
    work_title = serializers.CharField(source="work.title", allow_null=True, default=None)
    licences = serializers.SerializerMethodField()
    details = serializers.DictField(help_text="How it was found; keys are readable labels.")

    # The return type is what the OpenAPI schema says of ``licences`` (drf-spectacular reads
    # it): a precise one would change the published schema, so it stays as it was.
    def get_licences(self, report: TraceReport) -> list[dict[str, Any]]:
        # Prefetched with the buyer by the selectors; ordered here, in memory.
        licences = sorted(report.licences.all(), key=lambda licence: licence.issued_at)
        return list(TracedLicenceOut(licences, many=True).data)
