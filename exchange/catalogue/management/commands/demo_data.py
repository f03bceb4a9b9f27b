"""Create the demo's people (buyers with money in their wallets) and works (pictures and
short music tracks, all made here), and print how to log in.

Safe to run again: existing demo users and works are kept, and the passwords (random,
kept in the data folder with owner-only access, never in the repository) stay the same.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from exchange.accounts.models import Role, User
from exchange.catalogue.demo_audio import demo_music_mp3
from exchange.catalogue.demo_images import demo_image_png
from exchange.catalogue.models import Work
from exchange.catalogue.services import work_register

DEMO_USERS = (
    ("rita", Role.RIGHTS_HOLDER, "Rita the rights holder"),
    ("bob", Role.BUYER, "Bob, a buyer"),
    ("carol", Role.BUYER, "Carol, a buyer"),
    ("admin", Role.ADMIN, "The platform admin"),
)
DEMO_WORKS = (
    ("Harbour at dawn", "A quiet harbour in early light.", 1250, "EUR"),
    ("Circles and squares", "Colour study in flat shapes.", 800, "EUR"),
    ("Night market", "Lanterns over a busy street.", 1500, "JPY"),
    ("Mountain pass", "Road through the high pass.", 999, "USD"),
    ("서울의 밤 (Seoul at night)", "불빛이 가득한 도시의 밤. City lights after dark.",
     15000, "KRW"),
)
#: music, 24 s each, MP3 at 128 kbit/s: the agent delivers each copy marked, as an MP3
DEMO_TRACKS = (
    ("Harbour lights (demo track)", "Plucked strings over a walking bass, 24 s.", 199, "EUR"),
    ("Night drive (demo track)", "A minor-key groove with hi-hats, 24 s.", 249, "USD"),
    ("한강 산책 (demo track)", "강변을 걷는 듯한 가벼운 리듬, 24초. A light walk by the river.",
     3000, "KRW"),
)


def _passwords_file() -> Path:
    return settings.DATA_DIR / "demo_logins.json"


def _load_passwords() -> dict[str, str]:
    path = _passwords_file()
    if path.exists():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    passwords = {name: secrets.token_urlsafe(9) for name, *_ in DEMO_USERS}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(passwords, handle)
    return passwords


# What the demo buyers start with, so that a first purchase needs no top-up.
DEMO_FUNDS = (("EUR", 5000), ("USD", 5000), ("JPY", 5000), ("KRW", 100_000))


class Command(BaseCommand):
    help = "Create demo users (a rights holder, two buyers, an admin) and a few works."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Do not print the logins.")

    def _fund_buyers(self, users: dict[str, User]) -> None:
        """Top up the demo buyers through the test payment provider, once."""
        from exchange.payments.models import TopUp
        from exchange.payments.services import topup_create

        for name in ("bob", "carol"):
            if TopUp.objects.filter(user=users[name]).exists():
                continue
            for currency, amount in DEMO_FUNDS:
                topup_create(user=users[name], amount_minor=amount, currency=currency)

    def _register(self, owner: User, row: tuple[str, str, int, str], *, data: bytes,
                  filename: str) -> None:
        title, description, price, currency = row
        work_register(
            owner=owner,
            title=title,
            description=description,
            upload=io.BytesIO(data),
            upload_size=len(data),
            original_filename=filename,
            price_minor=price,
            currency=currency,
            allowed_uses=["view", "download"],
            licence_days=365,
            byte_allowance_multiple=2,
        )

    def handle(self, *args: Any, **options: Any) -> None:
        passwords = _load_passwords()
        users: dict[str, User] = {}
        with transaction.atomic():
            for username, role, description in DEMO_USERS:
                user, created = User.objects.get_or_create(
                    username=username,
                    defaults={
                        "role": role,
                        "email": f"{username}@demo.invalid",
                        "first_name": description,
                    },
                )
                if created:
                    user.set_password(passwords[username])
                    if role == Role.ADMIN:
                        user.is_staff = True
                        user.is_superuser = True
                    user.save()
                users[username] = user

        self._fund_buyers(users)
        rita = users["rita"]
        for seed, row in enumerate(DEMO_WORKS, start=1):
            if not Work.objects.filter(owner=rita, title=row[0]).exists():
                self._register(rita, row, data=demo_image_png(seed=seed),
                               filename=f"demo-{seed}.png")
        for seed, row in enumerate(DEMO_TRACKS, start=1):
            if not Work.objects.filter(owner=rita, title=row[0]).exists():
                self._register(rita, row, data=demo_music_mp3(seed=seed),
                               filename=f"demo-track-{seed}.mp3")

        if options["quiet"]:
            return
        self.stdout.write(self.style.SUCCESS(f"Demo logins (also in {_passwords_file()}):"))
        for username, _role, description in DEMO_USERS:
            self.stdout.write(f"  {username:<6} {passwords[username]:<14} {description}")
