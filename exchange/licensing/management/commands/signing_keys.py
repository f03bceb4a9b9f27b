"""Rotate the platform's signing keys: list, publish, activate, retire.

A rotation is three steps, hours or days apart:
  signing_keys publish          a new key, verify-only (agents learn it from the JWKS)
  signing_keys activate KID     it signs from now on (refused until JWKS caches expired)
  signing_keys retire KID       the old key verifies nothing more (refused while any
                                token it signed is still alive)
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from exchange.licensing.keys import key_activate, key_live_until, key_publish, key_retire
from exchange.licensing.models import PlatformKey
from licensing.core.errors import KeyStateError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="Show every key and its state.")
        sub.add_parser("publish", help="Publish a new verify-only key.")
        activate = sub.add_parser("activate", help="Make a published key the signer.")
        activate.add_argument("kid")
        activate.add_argument(
            "--force", action="store_true", help="Skip the wait for agents' JWKS caches to expire."
        )
        retire = sub.add_parser("retire", help="Retire a verify-only key.")
        retire.add_argument("kid")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "publish":
                row = key_publish()
                self.stdout.write(f"published {row.kid} (verify-only)")
            elif action == "activate":
                row = key_activate(kid=self._kid(options["kid"]), force=options["force"])
                self.stdout.write(f"activated {row.kid}")
            elif action == "retire":
                row = key_retire(kid=self._kid(options["kid"]))
                self.stdout.write(f"retired {row.kid}")
        except KeyStateError as exc:
            raise CommandError(str(exc)) from exc
        for key in PlatformKey.objects.all():
            live = key_live_until(key)
            until = ""
            if live and key.state != "retired":
                until = f" tokens alive until {live:%Y-%m-%d %H:%M}"
            self.stdout.write(
                f"{key.kid}  {key.state:<11} published {key.published_at:%Y-%m-%d}{until}"
            )

    def _kid(self, given: str) -> str:
        matches = list(
            PlatformKey.objects.filter(kid__startswith=given).values_list("kid", flat=True)
        )
        if len(matches) != 1:
            raise CommandError(f"{given!r} matches {len(matches)} keys; give more of the kid")
        return matches[0]
