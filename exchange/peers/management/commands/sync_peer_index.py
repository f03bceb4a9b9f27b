"""Tell the live index every work on sale and every revocation now (also a beat job)."""

from typing import Any

from django.core.management.base import BaseCommand

from exchange.peers.tasks import peer_index_sync_task


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"published {peer_index_sync_task()} entries")
