"""Licensing in the admin: read-only records; keys change only through the rotation
command, so that the publish-activate-retire order cannot be skipped by a click."""


from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from exchange.licensing.models import (
    Device,
    Licence,
    PlatformKey,
    RevocationEquivocation,
    RevocationList,
    WorkPackage,
)
from exchange.licensing.services import device_revoke, licence_revoke
from exchange.readonly_admin import ReadOnlyAdmin


@admin.register(PlatformKey)
class PlatformKeyAdmin(ReadOnlyAdmin):
    list_display = ("kid", "state", "published_at", "activated_at", "deactivated_at", "retired_at")
    list_filter = ("state",)
    exclude = ("private_wrapped",)


@admin.register(Device)
class DeviceAdmin(ReadOnlyAdmin):
    list_display = ("device_id", "user", "name", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("device_id", "user__username", "name")
    actions = ["revoke"]

    @admin.action(description="Revoke the selected devices")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Device]) -> None:
        for device in queryset:
            device_revoke(device=device, actor=request.user)  # type: ignore[arg-type]
        messages.success(request, f"Revoked {queryset.count()} device(s).")


@admin.register(WorkPackage)
class WorkPackageAdmin(ReadOnlyAdmin):
    list_display = ("work", "piece_count", "piece_size", "ciphertext_size", "table_size", "root",
                    "created_at")
    exclude = ("content_key_wrapped", "watermark_key_wrapped")


@admin.register(Licence)
class LicenceAdmin(ReadOnlyAdmin):
    list_display = ("id", "buyer", "work", "device", "issued_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("id", "buyer__username", "work__title")
    exclude = ("token",)
    actions = ["revoke"]

    @admin.action(description="Revoke the selected licences")
    def revoke(self, request: HttpRequest, queryset: QuerySet[Licence]) -> None:
        count = sum(
            licence_revoke(licence=licence, reason="revoked by an admin", actor=request.user)  # type: ignore[arg-type]
            for licence in queryset
        )
        messages.success(request, f"Revoked {count} licence(s).")


@admin.register(RevocationList)
class RevocationListAdmin(ReadOnlyAdmin):
    list_display = ("version", "issued_at", "next_update", "licence_count", "device_count", "kid")
    exclude = ("token",)


@admin.register(RevocationEquivocation)
class RevocationEquivocationAdmin(ReadOnlyAdmin):
    """Evidence that a signing key equivocated: rotate it (docs/OPERATIONS.md)."""

    list_display = ("version", "reports", "reported_by", "reported_at")
