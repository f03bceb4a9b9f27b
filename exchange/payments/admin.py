from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from exchange.payments.models import Payout, TopUp, WebhookEvent


class _NoEditing(admin.ModelAdmin):
    """Payments change only through the provider's webhooks, never by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(TopUp)
class TopUpAdmin(_NoEditing):
    list_display = ("created_at", "user", "amount_minor", "currency", "state", "provider_ref")
    list_filter = ("state", "currency", "provider")
    search_fields = ("user__username", "provider_ref")


@admin.register(Payout)
class PayoutAdmin(_NoEditing):
    list_display = ("created_at", "user", "source", "amount_minor", "currency", "state")
    list_filter = ("state", "source", "currency")
    search_fields = ("user__username", "provider_ref")


@admin.register(WebhookEvent)
class WebhookEventAdmin(_NoEditing):
    list_display = ("received_at", "provider", "event_id", "event_type", "outcome")
    list_filter = ("provider", "event_type")
    search_fields = ("event_id",)
