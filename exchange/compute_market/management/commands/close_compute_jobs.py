"""Close compute jobs past their deadline, and finish those with nothing pending; each
returns the rest of its budget (also a Celery beat job)."""

from typing import Any

from django.core.management.base import BaseCommand

from exchange.compute_market.jobs_lifecycle import jobs_expire_due, jobs_finish_done


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        expired, finished = jobs_expire_due(), jobs_finish_done()
        self.stdout.write(f"expired {expired} job(s), finished {finished} job(s)")
