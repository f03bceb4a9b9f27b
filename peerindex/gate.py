"""Who may use the index, decided in memory: a credential checked once and then
remembered until it expires, revocations held as a set that Redis keeps fresh, and
per-second limits per address (an IPv6 client's /64) and per credential.

The limits are each process's own (a fixed one-second window): with N processes behind
one address an agent could reach N times the limit, still bounded, and no request pays a
round trip to count itself.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

from peerindex.credentials import Claims, CredentialError, verify

MAX_REMEMBERED = 200_000


class LimitedError(Exception):
    """Over a rate limit; retry after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


class Gate:
    def __init__(self, keys: Sequence[bytes], *, per_address: int, per_credential: int) -> None:
        self.keys = tuple(keys)
        self.per_address = per_address
        self.per_credential = per_credential
        self.revoked: frozenset[str] = frozenset()
        self._known: dict[str, Claims] = {}
        self._window = 0
        self._counts: dict[str, int] = {}

    def set_revoked(self, members: Iterable[str]) -> None:
        self.revoked = frozenset(members)

    def admit(self, header: bytes | None, address: str, now: int) -> Claims:
        """The caller's claims, or ``CredentialError``/``LimitedError``."""
        if now != self._window:
            self._window = now
            self._counts = {}
        if self.per_address:
            self._count("a" + _client_network(address), self.per_address)
        if header is None or not header.startswith(b"Bearer "):
            raise CredentialError("unauthenticated", "Send an index credential "
                                  "(Authorization: Bearer ...) from the platform.")
        token = header[7:].decode("latin-1")
        claims = self._known.get(token)
        if claims is None:
            claims = verify(self.keys, token, now=now)
            if len(self._known) >= MAX_REMEMBERED:
                self._forget_expired(now)
            self._known[token] = claims
        elif claims.exp <= now:
            del self._known[token]
            raise CredentialError("credential_expired", "The index credential has expired: "
                                  "ask the platform for a new one.")
        revoked = self.revoked
        if revoked and ("d:" + claims.device in revoked or "u:" + str(claims.user) in revoked
                        or "c:" + claims.jti in revoked):
            raise CredentialError("credential_revoked",
                                  "This credential, its device or its account is revoked.")
        if self.per_credential:
            self._count("c" + claims.jti, self.per_credential)
        return claims

    def _forget_expired(self, now: int) -> None:
        """Room in the credentials remembered: the expired ones go; if that is not
        enough, the oldest half (a dict keeps insertion order), which are checked again
        at their next use, a microsecond each."""
        self._known = {t: c for t, c in self._known.items() if c.exp > now}
        if len(self._known) >= MAX_REMEMBERED:
            keep = list(self._known.items())[len(self._known) // 2:]
            self._known = dict(keep)

    def _count(self, key: str, limit: int) -> None:
        seen = self._counts.get(key, 0) + 1
        self._counts[key] = seen
        if seen > limit:
            raise LimitedError(1)


@functools.lru_cache(maxsize=65_536)
def _client_network(address: str) -> str:
    """What the per-address limit counts: an IPv4 address, or an IPv6 address's /64 (one
    subscriber's whole allocation, which it may spread its requests across)."""
    if ":" not in address:
        return address
    try:
        network = ipaddress.IPv6Network(f"{address}/64", strict=False)
    except ValueError:
        return address
    return str(network.network_address) + "/64"
