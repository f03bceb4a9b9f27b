"""Run the periodic jobs (refunds, settlement, metering flush, revocation list, key
purge) in this process, on the beat schedule. For the embedded default, which has no
Celery beat; in production run ``celery -A exchange beat`` instead."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from exchange.operations.periodic import jobs, run_due, run_forever


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run every job once and exit.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            ran = run_due(jobs(), now=0.0)
            self.stdout.write(f"ran {len(ran)} job(s): {', '.join(ran)}")
            return
        run_forever()
