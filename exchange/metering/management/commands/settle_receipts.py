"""Settle every receipted purchase whose grace period for orders is over (also a beat job)."""

from typing import Any

from django.core.management.base import BaseCommand

from exchange.metering.services import receipts_settle_due


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"settled {receipts_settle_due()} purchase(s)")
