"""The compute market in the admin: every record visible, nothing editable by hand.

Jobs, units, assignments, earnings and payments are money or the evidence money was
paid on (a job's budget sits in escrow; a validated unit paid its devices), so they
change only through the services. A contributor's standing is what the quorum said of
its results; an admin who must stop a device revokes it (Licensing, Devices).
Modules' and outputs' bytes and units' inputs are left out of the pages.
"""

from django.contrib import admin

from exchange.compute_market.models import (
    Assignment,
    ComputeJob,
    ComputeModule,
    ComputePayment,
    Contributor,
    JobEarning,
    UnitOutput,
    WorkUnit,
)
from exchange.readonly_admin import ReadOnlyAdmin


@admin.register(ComputeModule)
class ComputeModuleAdmin(ReadOnlyAdmin):
    list_display = ("sha256", "size", "uploaded_by", "created_at")
    search_fields = ("sha256", "uploaded_by__username")
    exclude = ("wasm",)


@admin.register(ComputeJob)
class ComputeJobAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "name", "customer", "state", "unit_count", "replication",
                    "price_per_tfuel_minor", "currency", "budget_minor", "refunded_minor")
    list_filter = ("state", "currency")
    search_fields = ("id", "name", "customer__username")
    raw_id_fields = ("module",)


@admin.register(WorkUnit)
class WorkUnitAdmin(ReadOnlyAdmin):
    list_display = ("job", "seq", "label", "state", "issued_count", "open_slots", "fuel_cap",
                    "fuel", "closed_at")
    list_filter = ("state",)
    search_fields = ("job__id", "label")
    exclude = ("input",)
    raw_id_fields = ("job",)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "job", "unit", "device", "user", "state", "verdict", "issued_at",
                    "deadline", "returned_at", "fuel")
    list_filter = ("state", "verdict")
    search_fields = ("job__id", "device__device_id", "user__username")
    exclude = ("token",)
    raw_id_fields = ("unit", "job", "device", "user")


@admin.register(Contributor)
class ContributorAdmin(ReadOnlyAdmin):
    list_display = ("device", "user", "cores", "memory_bytes", "agreed", "disagreed",
                    "expired", "consecutive", "suspended_at", "last_seen_at")
    list_filter = ("suspended_at", "only_when_idle")
    search_fields = ("device__device_id", "user__username")


@admin.register(JobEarning)
class JobEarningAdmin(ReadOnlyAdmin):
    list_display = ("job", "user", "units", "fuel", "paid_minor", "remainder")
    search_fields = ("job__id", "user__username")


@admin.register(ComputePayment)
class ComputePaymentAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "job", "units", "contributors_minor", "fee_minor", "final")
    list_filter = ("final",)
    search_fields = ("id", "job__id")


@admin.register(UnitOutput)
class UnitOutputAdmin(ReadOnlyAdmin):
    list_display = ("unit", "sha256")
    search_fields = ("sha256",)
    exclude = ("data",)
