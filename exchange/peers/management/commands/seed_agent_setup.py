"""Prepare the platform's account for its own seed agent, and hand the agent its token.

The seed agent is an ordinary agent process, run by the platform operator beside the
platform, that imports every ready work's ciphertext from the platform's data folder and
serves it, so the first buyer of a work always has a source. This command does the
platform's half: the seed account (it logs in with a token only) and a live API token,
written to ``--token-file`` (owner-only). The agent does its own half through the public
API, as any agent does, so the platform never touches an agent's files:

    python manage.py seed_agent_setup --token-file DIR/platform-token
    python -m agent --data-dir DIR login --platform URL --token-file DIR/platform-token
    python -m agent --data-dir DIR init --port 7700
    python -m agent --data-dir DIR serve --import-from $PEERMARK_DATA_DIR/ciphertext

Running it again is safe: a token in the file that is still live is kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from exchange.accounts.models import ApiToken, Role, User
from exchange.accounts.services import api_token_create
from exchange.accounts.tokens import token_digest

SEEDER = "platform-seeder"


def _live_token(path: Path, user: User) -> str | None:
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True,
                                   digest=token_digest(token)).exists()
    return token if token and live else None


def _write_secret(path: Path, text: str) -> None:
    """Owner-only, through a temporary file and a rename: never a half-written token.

    The temporary file is made anew (a leftover one, whatever its mode, is removed first),
    so the mode is the one given here.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--token-file", type=Path, required=True,
                            help="where to write the seed account's API token (mode 600)")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["token_file"]
        if path.is_dir():
            raise CommandError(f"--token-file {path} is a folder, not a file")
        with transaction.atomic():
            user, _ = User.objects.get_or_create(
                username=SEEDER, defaults={"role": Role.BUYER, "email": "seeder@platform.invalid",
                                           "first_name": "The platform's seed agent"},
            )
            user.set_unusable_password()  # it logs in with its token only
            user.save(update_fields=["password"])
            token = _live_token(path, user)
            if token is not None:
                path.chmod(0o600)  # kept: still owner-only, whatever happened to it since
            else:
                token = api_token_create(user=user, name="seed agent").raw
                try:
                    _write_secret(path, token)
                except OSError as exc:
                    raise CommandError(f"cannot write {path}: {exc}") from exc
        self.stdout.write(f"seed account {SEEDER} ready; its API token is in {path}")
