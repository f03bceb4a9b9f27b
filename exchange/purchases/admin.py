from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from exchange.purchases.models import Invoice, Purchase, PurchaseState, Settlement
from exchange.purchases.services import PurchaseClosedError, purchase_refund
from exchange.readonly_admin import ReadOnlyAdmin


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "buyer", "work", "price_minor", "currency", "state",
                    "receipt_due_at")
    list_filter = ("state", "currency")
    search_fields = ("id", "buyer__username", "work__title")
    actions = ["refund"]

    @admin.action(description="Refund the selected held purchases (dispute)")
    def refund(self, request: HttpRequest, queryset: QuerySet[Purchase]) -> None:
        done = 0
        for purchase in queryset.filter(state=PurchaseState.HELD):
            try:
                purchase_refund(purchase_id=purchase.pk, reason="refunded by an admin",
                                actor=request.user)  # type: ignore[arg-type]
                done += 1
            except PurchaseClosedError:
                continue
        messages.success(request, f"Refunded {done} purchase(s).")


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = ("purchase", "settled_minor", "royalty_minor", "fee_minor", "seeding_minor",
                    "refunded_minor", "created_at")


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("number", "issued_at", "buyer_name", "seller_name", "amount_minor",
                    "currency")
    search_fields = ("buyer_name", "seller_name", "description")
