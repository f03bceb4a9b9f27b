from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from exchange.metering.models import LicenceUsage, MeteredOrder, Receipt


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MeteredOrder)
class MeteredOrderAdmin(_ReadOnly):
    list_display = ("recorded_at", "licence", "serving_user", "piece", "bytes", "counted_bytes")
    search_fields = ("licence__id", "serving_user__username", "serving_device__device_id")


@admin.register(LicenceUsage)
class LicenceUsageAdmin(_ReadOnly):
    list_display = ("licence", "metered_bytes", "order_count")


@admin.register(Receipt)
class ReceiptAdmin(_ReadOnly):
    list_display = ("received_at", "licence", "marked", "settled_at", "needs_review",
                    "review_reason")
    list_filter = ("needs_review", "marked")
    exclude = ("token",)
