"""Prepare the platform's own seed agent: its account, token, device keys and config.

The seed agent is an ordinary agent process, run by the platform operator beside the
platform, that imports every ready work's ciphertext from the platform's data folder and
serves it, so the first buyer of a work always has a source. Run once (again is safe),
then start it with:

    python -m agent --data-dir DIR serve --import-from $PEERMARK_DATA_DIR/ciphertext
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from agent.config import AgentHome
from exchange.accounts.models import ApiToken, Role, User
from exchange.accounts.services import api_token_create
from exchange.core.errors import ServiceError
from licensing.core import DeviceKeys
from licensing.services import device_register

SEEDER = "platform-seeder"


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data-dir", type=Path, required=True,
                            help="the seed agent's own folder")
        parser.add_argument("--platform", default="http://127.0.0.1:8000")
        parser.add_argument("--port", type=int, default=7700)

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["port"] <= 65535:
            raise CommandError(f"--port must be 1 to 65535, not {options['port']}")
        home = AgentHome(options["data_dir"])
        home.ensure()
        config = home.load_config()
        with transaction.atomic():
            user, _ = User.objects.get_or_create(
                username=SEEDER, defaults={"role": Role.BUYER, "email": "seeder@platform.invalid",
                                           "first_name": "The platform's seed agent"},
            )
            user.set_unusable_password()  # it logs in with its token only
            user.save(update_fields=["password"])
            if not config.token or not ApiToken.objects.filter(
                user=user, revoked_at__isnull=True, prefix=config.token[:12]
            ).exists():
                config.token = api_token_create(user=user, name="seed agent").raw
        if home.device_key_path.exists():
            keys = DeviceKeys.load(home.device_key_path)
        else:
            keys = DeviceKeys.generate()
            keys.save(home.device_key_path)
        public = keys.public.to_b64url()
        try:
            device_register(user=user, name="platform seed agent", signing_key=public["sig"],
                            kem_key=public["kem"])
        except ServiceError as exc:  # e.g. these keys' device was revoked
            raise CommandError(f"{exc.message} Remove {home.device_key_path} to make new "
                               "device keys.") from exc
        config.platform_url = options["platform"]
        config.username = SEEDER
        config.device_name = "platform seed agent"
        config.listen_port = options["port"]
        home.save_config(config)
        self.stdout.write(f"seed agent ready in {home.root} (device {keys.device_id[:12]}…, "
                          f"port {options['port']})")
