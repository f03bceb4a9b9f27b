"""Refund held purchases whose receipt window has passed (also a Celery beat job)."""

from typing import Any

from django.core.management.base import BaseCommand

from exchange.purchases.services import purchases_refund_overdue


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"refunded {purchases_refund_overdue()} overdue purchase(s)")
