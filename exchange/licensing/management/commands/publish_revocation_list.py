"""Publish a fresh revocation list now (also a Celery beat job, hourly, when due)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from exchange.licensing.services import revocation_list_current, revocation_list_publish


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--force", action="store_true",
                            help="Publish a new version even if the current one is fresh.")

    def handle(self, *args: Any, **options: Any) -> None:
        listed = revocation_list_publish() if options["force"] else revocation_list_current()
        self.stdout.write(f"revocation list v{listed.version}: {listed.licence_count} licences, "
                          f"{listed.device_count} devices, next update {listed.next_update:%c}")
