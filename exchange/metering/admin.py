from django.contrib import admin

from exchange.metering.models import LicenceUsage, MeteredOrder, Receipt
from exchange.readonly_admin import ReadOnlyAdmin


@admin.register(MeteredOrder)
class MeteredOrderAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "licence", "serving_user", "piece", "bytes", "counted_bytes")
    search_fields = ("licence__id", "serving_user__username", "serving_device__device_id")


@admin.register(LicenceUsage)
class LicenceUsageAdmin(ReadOnlyAdmin):
    list_display = ("licence", "metered_bytes", "order_count")


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "licence", "marked", "settled_at", "needs_review",
                    "review_reason")
    list_filter = ("needs_review", "marked")
    exclude = ("token",)
