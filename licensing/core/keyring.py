"""Platform signing keys and the key ring that verifies platform documents.

Keys are Ed25519, each named by a ``kid`` that is its RFC 7638 JWK thumbprint, so
a ``kid`` can be checked against the key it names. Each key is in one state:

* ``active``: the one key that signs (at most one per ring, and it needs its private half);
* ``verify-only``: verifies but never signs (a new key waiting to become active,
  or an old one whose tokens are still alive);
* ``retired``: verifies nothing any more; refused with ``RetiredKeyError``.

Rotation, as pure functions on immutable rings: ``with_new_key`` publishes a new
key verify-only, ``activate`` makes it the signer (the old signer becomes
verify-only), and ``retire`` refuses to retire a key before the longest-lived
token it signed has expired (``may_retire``).

The platform builds its ring from stored keys (private halves unwrapped with
``at_rest.unwrap_at_rest``); agents build theirs from the published JWKS with
``KeyRing.from_jwks`` and verify offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from .encoding import b64url_decode, b64url_encode, strict_json_object
from .errors import (
    KeyStateError,
    MalformedError,
    OversizedError,
    RetiredKeyError,
    UnknownKeyError,
)
from .jws import ALGORITHM, DEFAULT_LEEWAY, parse_document, sign_document, verify_signature
from .kinds import DocumentKind

#: a JWKS document larger than this is refused before parsing
MAX_JWKS_BYTES = 64 * 1024
#: more keys than this in one JWKS is refused
MAX_JWKS_KEYS = 32
_JWK_MEMBERS = frozenset({"kty", "crv", "x", "kid", "use", "alg"})


class KeyState(StrEnum):
    """Where a platform key is in its life."""

    ACTIVE = "active"
    VERIFY_ONLY = "verify-only"
    RETIRED = "retired"


@dataclass(frozen=True)
class PlatformKey:
    """One platform Ed25519 key, its ``kid`` (RFC 7638 thumbprint) and its state."""

    kid: str
    state: KeyState
    jwk: OKPKey = field(repr=False, compare=False)

    @classmethod
    def generate(cls, *, state: KeyState = KeyState.VERIFY_ONLY) -> PlatformKey:
        """A fresh key; new keys start verify-only (published before they sign)."""
        return cls.from_private_key(Ed25519PrivateKey.generate(), state=state)

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey, *, state: KeyState) -> PlatformKey:
        jwk = OKPKey.import_key(private_key)
        return cls(kid=jwk.thumbprint(), state=state, jwk=jwk)

    @classmethod
    def from_private_bytes(cls, raw: bytes, *, state: KeyState) -> PlatformKey:
        """Rebuild a key from the 32 raw private bytes that ``private_bytes`` gave."""
        if not isinstance(raw, bytes) or len(raw) != 32:
            raise MalformedError("an Ed25519 private key is 32 bytes")
        return cls.from_private_key(Ed25519PrivateKey.from_private_bytes(raw), state=state)

    @classmethod
    def from_public_jwk(cls, value: object, *, state: KeyState) -> PlatformKey:
        """A verify-only key from one public JWK; its ``kid`` must be its thumbprint."""
        if not isinstance(value, dict):
            raise MalformedError("a JWK is a JSON object")
        extra = sorted(set(value) - _JWK_MEMBERS)
        if extra:
            # "d" (a private key in a public document) lands here too.
            raise MalformedError(f"unexpected JWK members: {', '.join(extra)[:100]}")
        if value.get("kty") != "OKP" or value.get("crv") != "Ed25519":
            raise MalformedError("platform keys are OKP Ed25519 keys")
        if value.get("use", "sig") != "sig" or value.get("alg", ALGORITHM) != ALGORITHM:
            raise MalformedError(f"platform keys are for signatures with {ALGORITHM}")
        x = b64url_decode(value.get("x"), length=32, what="JWK x")
        try:
            jwk = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(x)})
        except (JoseError, ValueError, TypeError) as error:
            raise MalformedError("not a valid Ed25519 public key") from error
        kid = jwk.thumbprint()
        if value.get("kid") != kid:
            raise MalformedError("JWK kid is not the key's RFC 7638 thumbprint")
        return cls(kid=kid, state=state, jwk=jwk)

    @property
    def public_key(self) -> Ed25519PublicKey:
        public_key = self.jwk.public_key
        if not isinstance(public_key, Ed25519PublicKey):  # pragma: no cover - built as Ed25519
            raise KeyStateError("platform keys are Ed25519")
        return public_key

    @property
    def has_private_key(self) -> bool:
        return self.jwk.is_private

    def private_bytes(self) -> bytes:
        """The 32 raw private bytes, for storage wrapped under a key-encryption key."""
        private_key = self.jwk.private_key
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyStateError(f"key {self.kid} has no private half here")
        return private_key.private_bytes_raw()

    def public_jwk(self) -> dict[str, str]:
        """The public JWK as published: kty, crv, x, kid, use, alg."""
        public = self.jwk.as_dict(private=False)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": str(public["x"]),
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
        }

    def with_state(self, state: KeyState) -> PlatformKey:
        return replace(self, state=state)


def may_retire(
    *, now: int, last_signed_at: int | None, max_token_lifetime: int, leeway: int = DEFAULT_LEEWAY
) -> bool:
    """May a key be retired at ``now``?

    Only once the longest-lived token it can have signed has expired: its last
    signature time plus the longest lifetime of any token kind, plus the leeway
    verifiers allow on ``exp``. A key that never signed may be retired at once.
    """
    if last_signed_at is None:
        return True
    return now > last_signed_at + max_token_lifetime + leeway


def may_activate(*, now: int, published_at: int, jwks_max_age: int) -> bool:
    """May a published verify-only key start signing at ``now``?

    Only once every agent's cached copy of the JWKS has expired, so that every
    verifier already knows the key when the first token it signs arrives.
    """
    return now >= published_at + jwks_max_age


class KeyRing:
    """An immutable set of platform keys by ``kid``; signs with the active key."""

    def __init__(self, keys: Iterable[PlatformKey]) -> None:
        by_kid: dict[str, PlatformKey] = {}
        for key in keys:
            if key.kid in by_kid:
                raise KeyStateError(f"key {key.kid} appears twice")
            by_kid[key.kid] = key
        active = [k for k in by_kid.values() if k.state is KeyState.ACTIVE]
        if len(active) > 1:
            raise KeyStateError("a key ring has at most one active key")
        if active and not active[0].has_private_key:
            raise KeyStateError("the active key must have its private half")
        self._keys = by_kid
        self._active = active[0] if active else None

    def __repr__(self) -> str:
        states = ", ".join(f"{k.kid[:8]}:{k.state}" for k in self._keys.values())
        return f"KeyRing({states})"

    @property
    def keys(self) -> tuple[PlatformKey, ...]:
        return tuple(self._keys.values())

    @property
    def active(self) -> PlatformKey | None:
        return self._active

    def get(self, kid: str) -> PlatformKey:
        try:
            return self._keys[kid]
        except KeyError:
            raise UnknownKeyError(f"no key {kid[:64]!r} in the key ring") from None

    def verification_key(self, kid: str) -> Ed25519PublicKey:
        """The key that verifies tokens naming ``kid``; unknown and retired keys refused."""
        key = self._keys.get(kid)
        if key is None:
            raise UnknownKeyError(f"no key {kid[:64]!r} in the key ring")
        if key.state is KeyState.RETIRED:
            raise RetiredKeyError(f"key {kid} is retired")
        return key.public_key

    def sign(self, kind: DocumentKind, claims: dict[str, Any]) -> str:
        """Sign a platform document with the active key."""
        if kind.signer != "platform":
            raise KeyStateError(f"{kind.label} documents are signed by devices")
        if self._active is None:
            raise KeyStateError("this key ring has no active signing key")
        return sign_document(kind, claims, kid=self._active.kid, key=self._active.jwk)

    def verify(self, token: object, kind: DocumentKind) -> tuple[str, dict[str, Any]]:
        """Verify a platform document's header and signature; return ``(kid, claims)``.

        Times are not checked here: each kind's reader checks its own ``iat``/``exp``.
        """
        if kind.signer != "platform":
            raise KeyStateError(f"{kind.label} documents are signed by devices")
        document = parse_document(token, kind)
        verify_signature(document, self.verification_key(document.kid))
        return document.kid, document.claims

    # --- JWKS -------------------------------------------------------------------

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWKS to publish: every key that still verifies (not retired)."""
        return {
            "keys": [k.public_jwk() for k in self._keys.values() if k.state is not KeyState.RETIRED]
        }

    @classmethod
    def from_jwks(cls, document: str | bytes | Mapping[str, Any]) -> KeyRing:
        """A verify-only ring from a published JWKS (what an agent fetches)."""
        parsed: object = document
        if isinstance(document, (str, bytes)):
            if len(document) > MAX_JWKS_BYTES:
                raise OversizedError(f"JWKS longer than {MAX_JWKS_BYTES} bytes")
            parsed = strict_json_object(document, what="JWKS")
        if not isinstance(parsed, Mapping) or set(parsed) != {"keys"}:
            raise MalformedError('a JWKS is {"keys": [...]}')
        keys = parsed["keys"]
        if not isinstance(keys, list) or len(keys) > MAX_JWKS_KEYS:
            raise MalformedError(f"a JWKS lists at most {MAX_JWKS_KEYS} keys")
        return cls(PlatformKey.from_public_jwk(k, state=KeyState.VERIFY_ONLY) for k in keys)

    # --- rotation (pure: each returns a new ring) -----------------------------------

    def with_new_key(self, key: PlatformKey) -> KeyRing:
        """Publish a new key, verify-only: step one of a rotation."""
        if key.state is not KeyState.VERIFY_ONLY:
            raise KeyStateError("a new key is published verify-only first")
        if key.kid in self._keys:
            raise KeyStateError(f"key {key.kid} is already in the ring")
        return KeyRing([*self._keys.values(), key])

    def activate(self, kid: str) -> KeyRing:
        """Make a verify-only key the signer; the previous signer becomes verify-only."""
        key = self.get(kid)
        if key.state is not KeyState.VERIFY_ONLY:
            raise KeyStateError(f"only a verify-only key can become active, not {key.state}")
        if not key.has_private_key:
            raise KeyStateError(f"key {kid} has no private half here")
        promoted = key.with_state(KeyState.ACTIVE)
        demoted = (
            k.with_state(KeyState.VERIFY_ONLY) if k.state is KeyState.ACTIVE else k
            for k in self._keys.values()
            if k.kid != kid
        )
        return KeyRing([*demoted, promoted])

    def retire(
        self,
        kid: str,
        *,
        now: int,
        last_signed_at: int | None,
        max_token_lifetime: int,
        leeway: int = DEFAULT_LEEWAY,
    ) -> KeyRing:
        """Retire a verify-only key once every token it signed has expired."""
        key = self.get(kid)
        if key.state is KeyState.ACTIVE:
            raise KeyStateError("activate another key before retiring the active one")
        if key.state is KeyState.RETIRED:
            return self
        if not may_retire(
            now=now,
            last_signed_at=last_signed_at,
            max_token_lifetime=max_token_lifetime,
            leeway=leeway,
        ):
            raise KeyStateError(f"key {kid} may still have live tokens")
        return KeyRing(
            k.with_state(KeyState.RETIRED) if k.kid == kid else k for k in self._keys.values()
        )
