"""Reopen compute units whose device did not return them by their deadline (also a
Celery beat job)."""

from typing import Any

from django.core.management.base import BaseCommand

from exchange.compute_market.dispatch import assignments_reclaim_overdue


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"reclaimed {assignments_reclaim_overdue()} overdue assignment(s)")
