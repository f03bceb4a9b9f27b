"""Check the books: every invariant of the ledger, purchases, payments and metering;
with ``--deep``, also that every licence, manifest, wrapped key, ciphertext and master
still verifies (it reads every file: for restores, docs/OPERATIONS.md).

Prints each broken rule on its own line and exits 1 if there is any; prints "books
balance" and exits 0 otherwise. ``--json`` prints a JSON list instead (empty when right).
Run it after a restore, a crash or an incident (docs/OPERATIONS.md)."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from exchange.operations.books import books_check
from exchange.operations.integrity import integrity_check


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print a JSON list of problems.")
        parser.add_argument("--deep", action="store_true",
                            help="Also verify every licence and package, files included.")

    def handle(self, *args: Any, **options: Any) -> None:
        problems = integrity_check() if options["deep"] else books_check()
        if options["json"]:
            self.stdout.write(json.dumps(problems))
        elif problems:
            for problem in problems:
                self.stderr.write(problem)
        else:
            self.stdout.write("books balance" + (", and every document and file verifies"
                                                 if options["deep"] else ""))
        if problems:
            raise SystemExit(1)
