"""Write the peers changed in the live index to the database now (also a beat job)."""

from typing import Any

from django.core.management.base import BaseCommand

from exchange.peers.tasks import peer_index_flush_task


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"flushed {peer_index_flush_task()} change(s)")
