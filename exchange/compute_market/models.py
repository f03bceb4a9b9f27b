"""The compute market's records: modules, jobs, work units, their assignments to
contributors' devices, the devices' standing, and the payments made for validated units.

Names follow BOINC where it has one: a *unit* (BOINC's workunit) is run as several
*assignments* (BOINC's results or replicas), each on a device of a different user; a
unit is *validated* when a quorum of their results agree, and then each agreeing
device is paid for the fuel the unit burned.

No row is shared by every contributor: dispatch locks the units it hands out with
``FOR UPDATE SKIP LOCKED`` (so concurrent contributors take different units), intake
locks the units its results belong to, and progress is counted from the units, never
kept in a counter on the job.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class ComputeModule(models.Model):
    """A checked WebAssembly module, stored once by its SHA-256 however many jobs use it."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.PositiveIntegerField()
    wasm = models.BinaryField()
    imports = models.JSONField(default=list, help_text="The WASI functions it imports.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="compute_modules")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.sha256[:12]}… ({self.size:,} bytes)"


class JobState(models.TextChoices):
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Past its deadline")


class ComputeJob(models.Model):
    """A customer's job: a module, its units, the price and the budget held in escrow.

    The price is per trillion (10^12) fuel units (fuel: wasmtime's count of executed
    WebAssembly instructions), in minor units of ``currency`` (``pricing`` says why).
    The budget (every unit's fuel cap x replication x price, plus the platform's fee) moved from the
    customer's wallet into the job's own escrow account when the job was accepted;
    validated units are paid from it and what is left goes back when the job ends.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="compute_jobs")
    name = models.CharField(max_length=100)
    module = models.ForeignKey(ComputeModule, on_delete=models.PROTECT, related_name="jobs")
    args = models.JSONField(default=list, help_text="The program's argv, argv[0] first.")
    runtime = models.CharField(max_length=128,
                               help_text="The sandbox profile every result must come from.")
    memory_bytes = models.BigIntegerField()
    output_bytes = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    price_per_tfuel_minor = models.BigIntegerField()
    fee_bps = models.PositiveIntegerField()
    replication = models.PositiveSmallIntegerField()
    max_results = models.PositiveSmallIntegerField(
        help_text="Most results gathered for one unit before it is marked failed.")
    unit_seconds = models.PositiveIntegerField(
        help_text="How long a device has to return a unit before it is reissued.")
    deadline = models.DateTimeField()
    unit_count = models.PositiveIntegerField()
    budget_minor = models.BigIntegerField()
    refunded_minor = models.BigIntegerField(default=0)
    state = models.CharField(max_length=10, choices=JobState.choices,
                             default=JobState.RUNNING, db_index=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What the job renders, for the portal (the demo renderer's image size): optional.
    presentation = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(replication__gte=1), name="job_replication_min"),
            models.CheckConstraint(condition=Q(budget_minor__gte=0), name="job_budget_min"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def escrow_reference(self) -> str:
        return f"compute:{self.id}"


class UnitState(models.TextChoices):
    PENDING = "pending", _("In progress")
    VALIDATED = "validated", _("Validated")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class WorkUnit(models.Model):
    """One unit: its input (the module's standard input) and fuel cap, and, once
    validated, the result the quorum agreed on."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(ComputeJob, on_delete=models.CASCADE, related_name="units")
    seq = models.PositiveIntegerField(help_text="Position in the job; the signed unit id.")
    label = models.CharField(max_length=100, blank=True)
    input = models.BinaryField()
    fuel_cap = models.BigIntegerField()
    state = models.CharField(max_length=10, choices=UnitState.choices,
                             default=UnitState.PENDING)
    quorum = models.PositiveSmallIntegerField(help_text="Agreeing results needed.")
    open_slots = models.PositiveSmallIntegerField(
        help_text="Assignments still to hand out now.")
    issued_count = models.PositiveSmallIntegerField(default=0)
    # The agreed result, once validated.
    output_sha256 = models.CharField(max_length=64, blank=True)
    output_size = models.BigIntegerField(null=True, blank=True)
    stop = models.CharField(max_length=20, blank=True)
    exit_status = models.BigIntegerField(null=True, blank=True)
    fuel = models.BigIntegerField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "seq"], name="unit_seq_once"),
        ]
        indexes = [
            # The dispatch queue: only the units with slots to hand out.
            models.Index(fields=["id"], name="unit_open_queue",
                         condition=Q(state="pending", open_slots__gt=0)),
            models.Index(fields=["job", "state"], name="unit_job_state"),
        ]

    def __str__(self) -> str:
        return f"unit {self.seq} of {self.job_id}"

    @property
    def unit_id(self) -> str:
        """The unit id the signed result names (and ``random_get`` is seeded from)."""
        return str(self.seq)


class AssignmentState(models.TextChoices):
    ISSUED = "issued", _("Running on the device")
    RETURNED = "returned", _("Result returned")
    EXPIRED = "expired", _("Not returned in time")
    CANCELLED = "cancelled", _("No longer needed")


class Verdict(models.TextChoices):
    PENDING = "pending", _("Waiting for the quorum")
    AGREED = "agreed", _("Agreed with the quorum")
    DISAGREED = "disagreed", _("Disagreed with the quorum")
    NO_VOTE = "no_vote", _("Stopped by the device's own limits (no vote)")
    UNCHECKED = "unchecked", _("Unit closed without a quorum")


class Assignment(models.Model):
    """One unit handed to one device, and what it returned."""

    id = models.BigAutoField(primary_key=True)
    unit = models.ForeignKey(WorkUnit, on_delete=models.CASCADE, related_name="assignments")
    # Both looked up through the composite indexes below (device and state, job and
    # verdict), which they lead: no index of their own to write on every assignment.
    job = models.ForeignKey(ComputeJob, on_delete=models.CASCADE, related_name="assignments",
                            db_index=False)
    device = models.ForeignKey("licensing.Device", on_delete=models.PROTECT,
                               related_name="compute_assignments", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                             related_name="compute_assignments")
    state = models.CharField(max_length=10, choices=AssignmentState.choices,
                             default=AssignmentState.ISSUED)
    issued_at = models.DateTimeField()
    deadline = models.DateTimeField()
    returned_at = models.DateTimeField(null=True, blank=True)
    token = models.TextField(blank=True, help_text="The device-signed result.")
    # NULL until returned, so that the uniqueness of used nonces ignores open assignments.
    nonce = models.CharField(max_length=22, null=True, blank=True)  # noqa: DJ001
    output_sha256 = models.CharField(max_length=64, blank=True)
    output_size = models.BigIntegerField(null=True, blank=True)
    stop = models.CharField(max_length=20, blank=True)
    exit_status = models.BigIntegerField(null=True, blank=True)
    fuel = models.BigIntegerField(null=True, blank=True)
    runtime = models.CharField(max_length=128, blank=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices, default=Verdict.PENDING)

    class Meta:
        constraints = [
            # Different users on every live replica of a unit: one member's devices
            # can never make a quorum by themselves.
            models.UniqueConstraint(fields=["unit", "user"], name="assignment_user_once",
                                    condition=Q(state__in=("issued", "returned"))),
            # A signed result is used once.
            models.UniqueConstraint(fields=["device", "nonce"], name="assignment_nonce_once",
                                    condition=Q(nonce__isnull=False)),
        ]
        indexes = [
            models.Index(fields=["deadline"], name="assignment_overdue",
                         condition=Q(state="issued")),
            models.Index(fields=["device", "state"], name="assignment_device_state"),
            models.Index(fields=["job", "verdict"], name="assignment_job_verdict"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} of {self.unit_id} to {self.device_id[:10]}…"


class Contributor(models.Model):
    """A device opted in to contribute, the limits it declared, and its standing.

    Standing counts results against the quorum: ``agreed`` and ``disagreed`` are
    results that matched or contradicted a validated unit; ``consecutive`` is the run
    of agreeing results since the last disagreement. A device past the disagreement
    threshold is suspended and given no work.
    """

    device = models.OneToOneField("licensing.Device", on_delete=models.CASCADE,
                                  primary_key=True, related_name="contributor")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="contributors")
    cores = models.PositiveSmallIntegerField(default=1)
    memory_bytes = models.BigIntegerField(help_text="Most memory one unit may use.")
    hours_per_day = models.PositiveSmallIntegerField(default=24)
    only_when_idle = models.BooleanField(default=False)
    runtime = models.CharField(max_length=128)
    agent_version = models.CharField(max_length=40, blank=True)
    agreed = models.PositiveIntegerField(default=0)
    disagreed = models.PositiveIntegerField(default=0)
    no_vote = models.PositiveIntegerField(default=0)
    expired = models.PositiveIntegerField(default=0)
    consecutive = models.PositiveIntegerField(default=0)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"contributor {self.device_id[:10]}…"


class JobEarning(models.Model):
    """What one party has earned on one job: a member (for their devices' agreeing
    results) or the platform (``user`` empty: the fee). Exact: whole minor units paid,
    plus the fraction accrued, in 10^-16 minor units (``pricing.SCALE``)."""

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(ComputeJob, on_delete=models.CASCADE, related_name="earnings")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.PROTECT, related_name="compute_earnings")
    units = models.PositiveIntegerField(default=0, help_text="Agreeing results paid.")
    fuel = models.BigIntegerField(default=0, help_text="Fuel of those results.")
    paid_minor = models.BigIntegerField(default=0)
    remainder = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "user"], name="earning_once",
                                    condition=Q(user__isnull=False)),
            models.UniqueConstraint(fields=["job"], name="earning_fee_once",
                                    condition=Q(user__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"earning of {self.user_id or 'platform'} on {self.job_id}"


class ComputePayment(models.Model):
    """One ledger entry paying for validated work (the whole units one intake accrued,
    or the fractions at the job's end)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey(ComputeJob, on_delete=models.PROTECT, related_name="payments")
    units = models.PositiveIntegerField()
    contributors_minor = models.BigIntegerField()
    fee_minor = models.BigIntegerField()
    final = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"payment {self.id} for {self.job_id}"


class UnitOutput(models.Model):
    """An output some device returned for a unit, stored once per distinct content.

    Kept until the unit closes: the agreed one stays (the customer's result); the
    others are deleted then.
    """

    id = models.BigAutoField(primary_key=True)
    unit = models.ForeignKey(WorkUnit, on_delete=models.CASCADE, related_name="outputs")
    sha256 = models.CharField(max_length=64)
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["unit", "sha256"], name="unit_output_once"),
        ]

    def __str__(self) -> str:
        return f"output {self.sha256[:12]}… of {self.unit_id}"
