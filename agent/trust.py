"""What the agent needs to verify offline: the platform's keys and revocation list.

Both are fetched from the platform when it is reachable and kept on disk, so the agent
(serving or downloading) keeps verifying while the platform is down. The highest
revocation-list version ever accepted is kept too: a restarted agent still refuses an
older list (rollback).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.config import write_private
from licensing.core import (
    EquivocationError,
    KeyRing,
    LicensingError,
    RevocationList,
    RevocationStore,
)

#: both tokens of a revocation-list equivocation, kept until the platform has them
EQUIVOCATION_FILE = "revocations.equivocation.json"


class TrustError(Exception):
    pass


class TrustStore:
    def __init__(self, folder: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._folder = folder
        self._clock = clock
        self._keyring: KeyRing | None = None
        self._revocations = RevocationStore(min_version=self._floor())
        stored = self._path("revocations.jwt")
        if stored.exists() and self.has_keys():
            # Expired while we were away: a fresh one is fetched on next contact.
            with contextlib.suppress(LicensingError):
                self._revocations.offer(stored.read_text().strip(), keyring=self.keyring(),
                                        now=int(self._clock()))

    def _path(self, name: str) -> Path:
        return self._folder / name

    def _floor(self) -> int:
        try:
            return int(json.loads(self._path("revocations.state").read_text())["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    # --- keys ------------------------------------------------------------------------

    def has_keys(self) -> bool:
        return self._path("jwks.json").exists()

    def keyring(self) -> KeyRing:
        if self._keyring is None:
            try:
                self._keyring = KeyRing.from_jwks(self._path("jwks.json").read_bytes())
            except OSError as exc:
                raise TrustError("no platform keys yet: run `init` or `login` while the "
                                 "platform is reachable") from exc
        return self._keyring

    def update_keys(self, jwks: bytes) -> KeyRing:
        ring = KeyRing.from_jwks(jwks)  # refuse a malformed document before storing it
        write_private(self._path("jwks.json"), jwks)
        self._keyring = ring
        return ring

    # --- revocations ------------------------------------------------------------------

    def offer_revocations(self, token: str) -> bool:
        """Consider a list from the platform; refuse rollback and expired lists.

        A different list under the version already held is evidence that the platform's
        signer equivocates: the held list stays, and both tokens are kept in
        ``revocations.equivocation.json`` until they are reported (``equivocation``).
        """
        try:
            replaced = self._revocations.offer(token, keyring=self.keyring(),
                                               now=int(self._clock()))
        except EquivocationError as error:
            if error.first is not None and error.second is not None and self.equivocation() is None:
                evidence = {"version": self._revocations.version, "first": error.first,
                            "second": error.second, "reported": False}
                write_private(self._path(EQUIVOCATION_FILE), json.dumps(evidence).encode())
            return False
        if replaced:
            write_private(self._path("revocations.jwt"), token.encode())
            write_private(self._path("revocations.state"),
                          json.dumps({"version": self._revocations.version}).encode())
        return replaced

    def equivocation(self) -> dict[str, Any] | None:
        """The evidence of an equivocation held, if any (``version``, both tokens,
        ``reported``)."""
        try:
            evidence = json.loads(self._path(EQUIVOCATION_FILE).read_text())
        except (OSError, ValueError):
            return None
        return evidence if isinstance(evidence, dict) else None

    def equivocation_reported(self) -> None:
        evidence = self.equivocation()
        if evidence is not None:
            evidence["reported"] = True
            write_private(self._path(EQUIVOCATION_FILE), json.dumps(evidence).encode())

    def revocations(self) -> RevocationList:
        """The held list, if fresh; ``ExpiredError`` tells the caller to fetch one."""
        return self._revocations.current(now=int(self._clock()))

    @property
    def revocations_version(self) -> int:
        return self._revocations.version
