"""The signed revocation list, and the store that refuses rollback and freeze.

Claims (typ ``pm-revocation+jwt``, signed by the platform), after TUF metadata
and X.509 CRLs:

    version   a monotonic integer; every new list has a higher one
    iat       issue time
    exp       next-update time: past it the list is stale ("freeze" protection)
    licences  revoked licence ids (``jti``), sorted
    devices   revoked device ids, sorted

Lookups key on ``jti`` and device id, never on token text. A holder keeps one
list in a ``RevocationStore``, which refuses a lower version than the one it
holds (rollback), refuses a list past its next update (freeze), and keeps what
it holds when offered the same version again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .encoding import ClaimReader, check_identifier
from .errors import (
    EquivocationError,
    ExpiredError,
    MalformedError,
    MismatchError,
    RevokedError,
    RollbackError,
)
from .jws import DEFAULT_LEEWAY, check_lifetime
from .keyring import KeyRing
from .kinds import DocumentKind
from .licence import Licence

#: most entries (licences + devices) in one list
MAX_ENTRIES = 100_000
_CLAIMS = frozenset(("version", "iat", "exp", "licences", "devices"))


@dataclass(frozen=True)
class RevocationList:
    """A verified revocation list."""

    version: int
    issued_at: int
    next_update: int
    licences: frozenset[str]
    devices: frozenset[str]

    def is_fresh(self, *, now: int, leeway: int = DEFAULT_LEEWAY) -> bool:
        return now <= self.next_update + leeway

    def is_licence_revoked(self, licence_id: str) -> bool:
        return licence_id in self.licences

    def is_device_revoked(self, device_id: str) -> bool:
        return device_id in self.devices

    def check_licence(self, licence: Licence) -> None:
        """Refuse a licence that is revoked, or bound to a revoked device."""
        if licence.licence_id in self.licences:
            raise RevokedError(f"licence {licence.licence_id} is revoked")
        if licence.device_id in self.devices:
            raise RevokedError(f"device {licence.device_id} is revoked")


def sign_revocation_list(
    *,
    keyring: KeyRing,
    version: int,
    issued_at: int,
    next_update: int,
    licences: Iterable[str],
    devices: Iterable[str],
) -> str:
    """Sign a revocation list with the platform's active key."""
    if type(version) is not int or version < 1:
        raise MalformedError("a revocation list version is a positive integer")
    if next_update <= issued_at:
        raise MalformedError("the next update must come after the issue time")
    licence_ids = sorted({check_identifier(j, what="licence id") for j in licences})
    device_ids = sorted({check_identifier(d, what="device id") for d in devices})
    if len(licence_ids) + len(device_ids) > MAX_ENTRIES:
        raise MalformedError(f"more than {MAX_ENTRIES} revocations in one list")
    claims = {
        "version": version,
        "iat": issued_at,
        "exp": next_update,
        "licences": licence_ids,
        "devices": device_ids,
    }
    return keyring.sign(DocumentKind.REVOCATION_LIST, claims)


def read_revocation_list(
    token: object, *, keyring: KeyRing, now: int, leeway: int = DEFAULT_LEEWAY
) -> RevocationList:
    """Verify a revocation list; a list past its next update is refused (``ExpiredError``)."""
    _, claims = keyring.verify(token, DocumentKind.REVOCATION_LIST)
    reader = ClaimReader(claims, required=_CLAIMS, what="revocation list")
    issued_at, next_update = reader.integer("iat"), reader.integer("exp")
    check_lifetime(issued_at=issued_at, expires_at=next_update, now=now, leeway=leeway)
    return RevocationList(
        version=reader.integer("version", minimum=1),
        issued_at=issued_at,
        next_update=next_update,
        licences=frozenset(reader.identifier_list("licences", max_items=MAX_ENTRIES)),
        devices=frozenset(reader.identifier_list("devices", max_items=MAX_ENTRIES)),
    )


def equivocating_pair(first: str, second: str, *, keyring: KeyRing) -> int:
    """Check that two tokens prove an equivocation; return their shared version.

    Both must be revocation lists signed by ``keyring`` (whatever their age: evidence
    stays evidence once the lists expire), under the same version, listing different
    licences or devices. Anything else raises (``BadSignatureError``,
    ``MismatchError``...): a report that proves nothing is refused.
    """
    lists = []
    for token in (first, second):
        _, claims = keyring.verify(token, DocumentKind.REVOCATION_LIST)
        issued_at = ClaimReader(claims, required=_CLAIMS, what="revocation list").integer("iat")
        lists.append(read_revocation_list(token, keyring=keyring, now=issued_at))
    a, b = lists
    if a.version != b.version:
        raise MismatchError("the two revocation lists have different versions")
    if (a.licences, a.devices) == (b.licences, b.devices):
        raise MismatchError("the two revocation lists revoke the same licences and devices")
    return a.version


class RevocationStore:
    """Holds the newest revocation list seen; refuses rollback and freeze.

    ``min_version`` lets a holder that persisted the highest version it accepted
    refuse older lists after a restart, before it holds any list again.
    """

    def __init__(self, *, min_version: int = 0) -> None:
        self._current: RevocationList | None = None
        self._token: str | None = None
        self._min_version = min_version

    @property
    def version(self) -> int:
        """The highest version accepted (or the persisted floor)."""
        return self._current.version if self._current is not None else self._min_version

    @property
    def token(self) -> str | None:
        """The held list's token, to persist."""
        return self._token

    def offer(
        self, token: str, *, keyring: KeyRing, now: int, leeway: int = DEFAULT_LEEWAY
    ) -> bool:
        """Verify and consider a list; return whether it replaced the held one."""
        candidate = read_revocation_list(token, keyring=keyring, now=now, leeway=leeway)
        try:
            replaced = self.update(candidate, now=now, leeway=leeway)
        except EquivocationError as error:
            raise EquivocationError(str(error), first=self._token, second=token) from None
        if replaced:
            self._token = token
        return replaced

    def update(self, candidate: RevocationList, *, now: int, leeway: int = DEFAULT_LEEWAY) -> bool:
        """Consider a verified list: newer replaces, the same keeps, older is ``RollbackError``,
        and a different list under the held version is ``EquivocationError`` (the held one
        stays)."""
        if not candidate.is_fresh(now=now, leeway=leeway):
            raise ExpiredError("the revocation list is past its next update")
        if candidate.version < self.version:
            raise RollbackError(
                f"revocation list version {candidate.version} is older than {self.version}"
            )
        held = self._current
        if held is not None and candidate.version == held.version:
            if (candidate.licences, candidate.devices) != (held.licences, held.devices):
                raise EquivocationError(
                    f"two different revocation lists are signed as version {held.version}; "
                    "the first is kept"
                )
            return False
        self._current = candidate
        self._token = None
        return True

    def current(self, *, now: int, leeway: int = DEFAULT_LEEWAY) -> RevocationList:
        """The held list, if still fresh; otherwise ``ExpiredError`` (fetch a new one)."""
        if self._current is None:
            raise ExpiredError("no revocation list held")
        if not self._current.is_fresh(now=now, leeway=leeway):
            raise ExpiredError("the held revocation list is past its next update; fetch a new one")
        return self._current
