"""Move accepted orders from the Redis stream into the database now (also a beat job)."""

from typing import Any

from django.core.management.base import BaseCommand

from exchange.metering.services import metering_flush


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"flushed {metering_flush()} order(s)")
