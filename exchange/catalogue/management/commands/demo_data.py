"""Create the demo's people (buyers with money in their wallets) and works (pictures and
short music tracks, all made here), a finished compute job, and print how to log in.

The compute job is Bob's picture from the demo ray tracer, computed for real: Carol's
and Rita's demo devices (keys kept in the data folder, like an agent's) take its tiles,
run each in the sandbox and send the signed results, so the job is validated, paid and
completed by the market's own code, as if two agents had contributed.

Safe to run again: existing demo users and works are kept, and the passwords (random,
kept in the data folder with owner-only access, never in the repository) stay the same.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from compute.limits import MIB, Limits
from compute.profile import runtime_profile
from compute.results import sign_unit_result
from compute.unit import Unit
from compute.worker import Sandbox
from exchange.accounts.models import Role, User
from exchange.catalogue.demo_audio import demo_music_mp3
from exchange.catalogue.demo_images import demo_image_png
from exchange.catalogue.models import DeliveryMode, Work
from exchange.catalogue.services import work_register
from exchange.compute_market.contributors import contributor_enroll
from exchange.compute_market.demo_jobs import demo_module, demo_render_spec
from exchange.compute_market.dispatch import units_dispatch
from exchange.compute_market.intake import ResultItem, results_submit
from exchange.compute_market.models import ComputeJob, ComputeModule, JobState
from exchange.compute_market.submission import job_submit
from exchange.core.errors import ServiceError
from exchange.licensing.services import device_register
from licensing.core import DeviceKeys

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
#: the demo's one picture the buyer's agent marks; the others take the default for
#: images, sealed delivery (docs/SEALED.md), so the portal shows both side by side
DEMO_MARKED_WORKS = frozenset({"Harbour at dawn"})
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

#: The demo's compute job: Bob's picture, 12 tiles of 40 x 40 pixels, each run on the
#: devices of the two contributors (about 3 s in all). The price per trillion fuel is
#: high, so that a job this small costs whole cents (about EUR 0.40 of a EUR 1.41 budget).
DEMO_RENDER_NAME = "Demo picture (ray-traced, 160 x 120)"
DEMO_RENDER = {"width": 160, "height": 120, "tile": 40, "samples": 4}
DEMO_RENDER_PRICE = ("EUR", 100_000)
DEMO_RENDER_CUSTOMER = "bob"
DEMO_CONTRIBUTORS = ("carol", "rita")
#: how long to wait for the customer's top-up (delivered by a worker where Celery runs)
FUNDS_WAIT_SECONDS = 30.0


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
        mode = DeliveryMode.MARKED.value if title in DEMO_MARKED_WORKS else None
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
            delivery_mode=mode,
        )

    # --- the compute job -----------------------------------------------------------------

    @staticmethod
    def _demo_members(users: dict[str, User]) -> None:
        """Rita's storefront says who she is; Bob follows her and Carol keeps a saved
        search, so the works registered next reach both as notifications (docs/MEMBERS.md).
        Each step is a no-op when run again."""
        from exchange.community.services import (
            follow_create,
            profile_update,
            saved_search_create,
        )

        profile_update(user=users["rita"], changes={
            "display_name": "Rita Park (박리타)",
            "bio": "서울에서 사진을 찍고 음악을 만듭니다. Photographs of Seoul and the sea, "
                   "and music for night walks.",
            "links": ["https://example.org/rita"],
        })
        follow_create(follower=users["bob"], username="rita")
        saved_search_create(owner=users["carol"], query="night")

    def _demo_compute(self, users: dict[str, User]) -> None:
        """Bob's demo picture, submitted, computed by two devices and finished (once)."""
        customer = users[DEMO_RENDER_CUSTOMER]
        job = ComputeJob.objects.filter(customer=customer, name=DEMO_RENDER_NAME).first()
        if job is not None and job.state != JobState.RUNNING:
            return
        if job is None:
            job = self._submit_render(customer)
            if job is None:
                return
        folder = settings.DATA_DIR / "demo-compute"
        folder.mkdir(mode=0o700, exist_ok=True)
        devices = [self._contributing_device(users[name], folder) for name in DEMO_CONTRIBUTORS]
        self._compute(job, devices, folder / "sandbox")

    def _submit_render(self, customer: User) -> ComputeJob | None:
        currency, price = DEMO_RENDER_PRICE
        spec = demo_render_spec(module=demo_module(customer), currency=currency,
                                price_per_tfuel_minor=price, name=DEMO_RENDER_NAME,
                                **DEMO_RENDER)
        waited_until = time.monotonic() + FUNDS_WAIT_SECONDS
        while True:
            try:
                return job_submit(customer=customer, spec=spec)
            except ServiceError as error:
                # The top-up may still be on its way (a worker delivers its webhook).
                if error.code not in ("insufficient_funds", "currency_mismatch") or (
                        time.monotonic() > waited_until):
                    self.stderr.write(f"The demo compute job was not made: {error.message}")
                    return None
            time.sleep(0.5)

    @staticmethod
    def _contributing_device(user: User, folder: Path) -> tuple[User, DeviceKeys]:
        """The member's demo device: keys made once and kept (as an agent keeps its own),
        registered, and opted in to contribute."""
        path = folder / f"{user.username}.device-keys"
        if path.exists():
            keys = DeviceKeys.load(path)
        else:
            keys = DeviceKeys.generate()
            keys.save(path)
        public = keys.public.to_b64url()
        device_register(user=user, name=f"{user.username}'s demo computer",
                        signing_key=public["sig"], kem_key=public["kem"])
        contributor_enroll(user=user, device_id=keys.device_id, runtime=runtime_profile(),
                           cores=2, memory_bytes=512 * MIB, agent_version="demo data")
        return user, keys

    @staticmethod
    def _compute(job: ComputeJob, devices: list[tuple[User, DeviceKeys]],
                 cache: Path) -> None:
        """Each device takes the job's open units, runs them in the sandbox and sends the
        signed results, until none is left to take. Units of any other job dispatch hands
        out are left alone (they return to the queue at their deadline)."""
        module = ComputeModule.objects.get(pk=job.module_id)
        sandbox = Sandbox(cache, limits=Limits(memory_bytes=job.memory_bytes,
                                               output_bytes=job.output_bytes))
        prepared = sandbox.prepare(bytes(module.wasm))
        for _round in range(job.max_results):
            sent = 0
            for user, keys in devices:
                items = []
                for given in units_dispatch(user=user, device_id=keys.device_id,
                                            max_units=job.unit_count):
                    if given.job.pk != job.pk:
                        continue
                    result = sandbox.run(prepared, Unit(
                        job_id=str(job.pk), unit_id=given.unit.unit_id,
                        input=bytes(given.unit.input), fuel=given.unit.fuel_cap,
                        args=tuple(job.args)))
                    items.append(ResultItem(
                        assignment=given.assignment.pk, output=result.output,
                        token=sign_unit_result(keys, result, issued_at=int(time.time()))))
                if items:
                    results_submit(user=user, device_id=keys.device_id, items=items)
                    sent += len(items)
            if not sent:
                return

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
        self._demo_members(users)  # before the works, so their announcements reach Bob
        rita = users["rita"]
        for seed, row in enumerate(DEMO_WORKS, start=1):
            if not Work.objects.filter(owner=rita, title=row[0]).exists():
                self._register(rita, row, data=demo_image_png(seed=seed),
                               filename=f"demo-{seed}.png")
        for seed, row in enumerate(DEMO_TRACKS, start=1):
            if not Work.objects.filter(owner=rita, title=row[0]).exists():
                self._register(rita, row, data=demo_music_mp3(seed=seed),
                               filename=f"demo-track-{seed}.mp3")

        self._demo_compute(users)

        if options["quiet"]:
            return
        self.stdout.write(self.style.SUCCESS(f"Demo logins (also in {_passwords_file()}):"))
        for username, _role, description in DEMO_USERS:
            self.stdout.write(f"  {username:<6} {passwords[username]:<14} {description}")
