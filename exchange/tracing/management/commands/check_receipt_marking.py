"""Recompute a sample of delivered copies and compare them with their receipts (also a
beat job); differences are flagged for review."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from exchange.tracing.marking_checks import receipts_marking_check_sample


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--limit", type=int, default=None,
                            help="receipts to check (default PEERMARK_MARKING_CHECKS_PER_RUN)")

    def handle(self, *args: Any, **options: Any) -> None:
        limit = options["limit"]
        if limit is not None and limit < 0:
            self.stderr.write("--limit must be 0 or more")
            raise SystemExit(2)
        self.stdout.write(f"checked {receipts_marking_check_sample(limit=limit)} receipt(s)")
