"""Back up the database and the data folder's masters, ciphertext and previews into a new
folder (docs/OPERATIONS.md, "Backup and restore"). The key-encryption key is not
included: keep it apart."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.operations.backup import BackupError, backup_make


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("destination", type=Path, help="A folder that does not exist yet.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            summary = backup_make(options["destination"], progress=self.stdout.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"backup written to {options['destination']}: {summary.files} "
                          f"file(s), {summary.file_bytes:,} bytes, {summary.database} database. "
                          "Keep the key-encryption key apart from it.")
