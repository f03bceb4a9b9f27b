"""The compute market's API shapes. Bytes travel as standard base64 in JSON."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import serializers

from compute.limits import GIB, MIB, WASM_PAGE
from exchange.compute_market import submission
from exchange.compute_market.models import ComputeJob, Contributor
from exchange.compute_market.selectors import Progress
from exchange.core.fields import (
    INT64_MAX,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from exchange.money.currencies import format_minor
from exchange.money.fields import CurrencyField


class Base64Field(StrictCharField):
    """Bytes as standard base64 (RFC 4648, with padding)."""

    default_error_messages = {"base64": "Give the bytes as standard base64."}

    def __init__(self, *, max_bytes: int, **kwargs: Any) -> None:
        self.max_bytes = max_bytes
        super().__init__(max_length=4 * (max_bytes // 3 + 1), allow_blank=True,
                         trim_whitespace=False, **kwargs)

    def run_validation(self, data: object = serializers.empty) -> bytes:
        # CharField answers "" for a blank value without calling to_internal_value.
        text = super().run_validation(data)
        try:
            value = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.fail("base64")
        if len(value) > self.max_bytes:
            raise serializers.ValidationError(f"At most {self.max_bytes:,} bytes.")
        return value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class ModuleIn(serializers.Serializer):
    module = serializers.FileField(help_text="The WebAssembly module (WASI preview 1 command).")


class ModuleOut(serializers.Serializer):
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    imports = serializers.ListField(child=serializers.CharField())


class UnitIn(serializers.Serializer):
    input = Base64Field(max_bytes=submission.MAX_UNIT_INPUT_BYTES,
                        help_text="The unit's standard input, base64.")
    fuel = StrictIntegerField(min_value=1, max_value=submission.MAX_FUEL_CAP,
                              help_text="The most fuel (metered instructions) it may burn.")
    label = StrictCharField(max_length=100, required=False, default="")  # type: ignore[assignment]


class JobIn(serializers.Serializer):
    name = StrictCharField(max_length=100)
    module = StrictCharField(min_length=64, max_length=64, help_text="The module's SHA-256.")
    currency = CurrencyField()
    price_per_tfuel_minor = StrictIntegerField(
        min_value=1, max_value=submission.MAX_PRICE,
        help_text="Minor units per trillion (10^12) fuel; see docs/COMPUTE.md.")
    replication = StrictIntegerField(min_value=2, max_value=submission.MAX_REPLICATION,
                                     required=False, default=2)
    deadline = serializers.DateTimeField(required=False, allow_null=True, default=None)
    unit_seconds = StrictIntegerField(min_value=submission.MIN_UNIT_SECONDS,
                                      max_value=submission.MAX_UNIT_SECONDS, required=False,
                                      default=600)
    memory_bytes = StrictIntegerField(min_value=WASM_PAGE, max_value=4 * GIB, required=False,
                                      default=256 * MIB)
    output_bytes = StrictIntegerField(min_value=0, max_value=submission.MAX_OUTPUT_BYTES,
                                      required=False, default=1 * MIB)
    args = serializers.ListField(child=StrictCharField(max_length=4096, allow_blank=True),
                                 min_length=1, max_length=256, required=False,
                                 default=["job"])
    units = serializers.ListField(child=UnitIn(), min_length=1, max_length=submission.MAX_UNITS)


class JobOut(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    state = serializers.CharField()
    module = serializers.CharField(source="module_id")
    runtime = serializers.CharField()
    args = serializers.ListField(child=serializers.CharField())
    currency = serializers.CharField()
    price_per_tfuel_minor = serializers.IntegerField()
    fee_bps = serializers.IntegerField()
    replication = serializers.IntegerField()
    unit_seconds = serializers.IntegerField()
    memory_bytes = serializers.IntegerField()
    output_bytes = serializers.IntegerField()
    deadline = serializers.DateTimeField()
    unit_count = serializers.IntegerField()
    budget_minor = serializers.IntegerField()
    refunded_minor = serializers.IntegerField()
    budget_display = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    cancel_requested_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_budget_display(self, job: ComputeJob) -> str:
        return format_minor(job.budget_minor, job.currency)


class ProgressOut(serializers.Serializer):
    units = serializers.DictField(child=serializers.IntegerField(),
                                  help_text="Units per state: pending, validated, failed, "
                                            "cancelled.")
    agreed = serializers.IntegerField(help_text="Results that agreed with their quorum.")
    disagreed = serializers.IntegerField(help_text="Results that contradicted it (unpaid).")
    outstanding = serializers.IntegerField(help_text="Units running on devices now.")
    fuel_spent = serializers.IntegerField()
    spent_minor = serializers.IntegerField(help_text="Paid out of the budget so far, fee "
                                                     "included.")
    fee_minor = serializers.IntegerField()


class JobDetailOut(JobOut):
    progress = serializers.SerializerMethodField()

    def get_progress(self, job: ComputeJob) -> dict[str, Any]:
        progress: Progress = self.context["progress"]
        return dict(ProgressOut(progress).data)


class UnitOut(serializers.Serializer):
    seq = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]
    state = serializers.CharField()
    fuel_cap = serializers.IntegerField()
    replicas = serializers.IntegerField(help_text="Assignments made so far.")
    output_sha256 = serializers.CharField(allow_blank=True)
    output_size = serializers.IntegerField(allow_null=True)
    stop = serializers.CharField(allow_blank=True)
    exit_status = serializers.IntegerField(allow_null=True)
    fuel = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField(allow_blank=True)


class ContributorIn(serializers.Serializer):
    device = StrictCharField(max_length=64)
    runtime = StrictCharField(max_length=128, help_text="The sandbox profile the agent runs.")
    cores = StrictIntegerField(min_value=1, max_value=256, required=False, default=1)
    memory_bytes = StrictIntegerField(min_value=WASM_PAGE, max_value=4 * GIB, required=False,
                                      default=256 * MIB)
    hours_per_day = StrictIntegerField(min_value=1, max_value=24, required=False, default=24)
    only_when_idle = StrictBooleanField(required=False, default=False)
    agent_version = StrictCharField(max_length=40, required=False, default="")


class ContributorOut(serializers.Serializer):
    device = serializers.CharField(source="device_id")
    runtime = serializers.CharField()
    cores = serializers.IntegerField()
    memory_bytes = serializers.IntegerField()
    hours_per_day = serializers.IntegerField()
    only_when_idle = serializers.BooleanField()
    agreed = serializers.IntegerField()
    disagreed = serializers.IntegerField()
    no_vote = serializers.IntegerField()
    expired = serializers.IntegerField()
    consecutive = serializers.IntegerField()
    suspended = serializers.SerializerMethodField()
    suspended_reason = serializers.CharField()

    def get_suspended(self, contributor: Contributor) -> bool:
        return contributor.suspended_at is not None


class DispatchIn(serializers.Serializer):
    device = StrictCharField(max_length=64)
    max_units = StrictIntegerField(min_value=1, max_value=256, required=False, default=16)


class AssignmentOut(serializers.Serializer):
    assignment = serializers.IntegerField()
    job = serializers.UUIDField()
    unit = serializers.CharField(help_text="The unit id the signed result must name.")
    module = serializers.CharField(help_text="SHA-256 of the module; fetch it once.")
    module_size = serializers.IntegerField()
    args = serializers.ListField(child=serializers.CharField())
    input = serializers.CharField(help_text="The unit's standard input, base64.")
    fuel = serializers.IntegerField(help_text="The fuel cap.")
    memory_bytes = serializers.IntegerField()
    output_bytes = serializers.IntegerField()
    runtime = serializers.CharField()
    deadline = serializers.DateTimeField()


class DispatchOut(serializers.Serializer):
    assignments = AssignmentOut(many=True)
    retry_after = serializers.IntegerField(
        help_text="Seconds to wait before asking again when no work was given (else 0).")


class ResultIn(serializers.Serializer):
    assignment = StrictIntegerField(min_value=1)
    token = StrictCharField(max_length=4096, help_text="The pm-compute-result+jwt document.")
    output = Base64Field(max_bytes=submission.MAX_OUTPUT_BYTES)


class ResultsIn(serializers.Serializer):
    device = StrictCharField(max_length=64)
    results = serializers.ListField(child=ResultIn(), min_length=1, max_length=256)


def _plain_text(value: object, max_length: int) -> bool:
    """Text a ``StrictCharField`` takes unchanged: no surrounding space to trim, no NUL,
    no surrogate (ASCII), not blank, not too long."""
    return (isinstance(value, str) and 0 < len(value) <= max_length and value.isascii()
            and "\x00" not in value and value.strip() == value)


_OUTPUT_TEXT_MAX = 4 * (submission.MAX_OUTPUT_BYTES // 3 + 1)


def _results_fast(data: object) -> dict[str, Any] | None:
    """``ResultsIn``'s validated data for a batch every field of which is plainly valid;
    None for anything else (the serializer then decides, and words its errors)."""
    if not isinstance(data, dict):
        return None
    device, items = data.get("device"), data.get("results")
    if not _plain_text(device, 64) or type(items) is not list or not 1 <= len(items) <= 256:
        return None
    results = []
    for item in items:
        if type(item) is not dict:
            return None
        assignment, token, text = item.get("assignment"), item.get("token"), item.get("output")
        if (type(assignment) is not int or not 1 <= assignment <= INT64_MAX
                or not _plain_text(token, 4096) or type(text) is not str
                or len(text) > _OUTPUT_TEXT_MAX):
            return None
        try:
            output = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(output) > submission.MAX_OUTPUT_BYTES:
            return None
        results.append({"assignment": assignment, "token": token, "output": output})
    return {"device": device, "results": results}


def results_in(data: object) -> dict[str, Any]:
    """``ResultsIn``'s validated data, or its ``ValidationError``.

    DRF's nested serializers cost about a quarter of a millisecond per result, a large
    share of a batch's time on the platform; a well-formed batch (what every agent
    sends) is checked here directly against the same rules, and anything else goes
    through ``ResultsIn`` itself, so that errors read exactly as they always did.
    """
    fast = _results_fast(data)
    if fast is not None:
        return fast
    serializer = ResultsIn(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ResultOutcomeOut(serializers.Serializer):
    index = serializers.IntegerField()
    assignment = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    reason = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)


class ResultsOut(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicate = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = ResultOutcomeOut(many=True)
