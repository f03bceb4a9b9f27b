"""Register every file in a folder as a work of one rights holder, with a progress bar.

For a catalogue that arrives in bulk (a back catalogue, an archive): each file goes
through the same service as an upload (type sniffing, limits, packaging), so a bad file
is reported and skipped, never half-registered.

    manage.py register_works --owner rita --price-minor 1200 --currency EUR ./photos
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from exchange.accounts.models import User
from exchange.catalogue.models import Work
from exchange.catalogue.services import work_register
from exchange.catalogue.terms import DEFAULT_USES
from exchange.catalogue.validation import (
    validate_byte_allowance_multiple,
    validate_currency,
    validate_licence_days,
    validate_price,
)
from exchange.core.errors import ServiceError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("folder", type=Path)
        parser.add_argument("--owner", required=True, help="the rights holder's username")
        parser.add_argument("--price-minor", type=int, required=True)
        parser.add_argument("--currency", required=True)
        parser.add_argument("--licence-days", type=int, default=365)
        parser.add_argument("--byte-allowance-multiple", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        from django.core.exceptions import ValidationError

        owner = User.objects.filter(username=options["owner"]).first()
        if owner is None or not owner.is_rights_holder:
            raise CommandError(f"{options['owner']!r} is not a rights holder")
        try:
            validate_currency(options["currency"])
            validate_price(options["price_minor"], options["currency"])
            validate_licence_days(options["licence_days"])
            validate_byte_allowance_multiple(options["byte_allowance_multiple"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        folder: Path = options["folder"]
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        known = set(Work.objects.filter(owner=owner).values_list("original_filename", flat=True))
        registered, skipped, failed = 0, 0, []
        for path in tqdm(files, desc="registering", unit="work", disable=not files):
            if path.name in known:
                skipped += 1  # registered by an earlier run: safe to run again
                continue
            try:
                with path.open("rb") as handle:
                    work_register(
                        owner=owner, title=path.stem.replace("_", " ")[:200], description="",
                        upload=handle, upload_size=path.stat().st_size,
                        original_filename=path.name, price_minor=options["price_minor"],
                        currency=options["currency"], allowed_uses=list(DEFAULT_USES),
                        licence_days=options["licence_days"],
                        byte_allowance_multiple=options["byte_allowance_multiple"],
                    )
                registered += 1
            except (ServiceError, OSError) as exc:
                failed.append(f"{path.name}: {exc}")
        self.stdout.write(f"registered {registered}, already there {skipped}, "
                          f"refused {len(failed)}")
        for line in failed:
            self.stdout.write(f"  refused {line}")
