from django.contrib import admin

from exchange.payments.models import Payout, TopUp, WebhookEvent
from exchange.readonly_admin import ReadOnlyAdmin


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "amount_minor", "currency", "state", "provider_ref")
    list_filter = ("state", "currency", "provider")
    search_fields = ("user__username", "provider_ref")


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "source", "amount_minor", "currency", "state")
    list_filter = ("state", "source", "currency")
    search_fields = ("user__username", "provider_ref")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "provider", "event_id", "event_type", "outcome")
    list_filter = ("provider", "event_type")
    search_fields = ("event_id",)
