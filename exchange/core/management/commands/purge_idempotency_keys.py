from typing import Any

from django.core.management.base import BaseCommand

from exchange.core.idempotency import idempotency_records_purge


class Command(BaseCommand):
    help = "Delete idempotency records older than the retention period (default 48 hours)."

    def handle(self, *args: Any, **options: Any) -> None:
        count = idempotency_records_purge()
        self.stdout.write(f"purged {count} idempotency records")
