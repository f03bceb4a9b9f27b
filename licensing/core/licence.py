"""Licence tokens: the platform's signed grant of a work to one buyer's device.

Claims (typ ``pm-licence+jwt``, signed by the platform):

=============  ===================================================================
``jti``        licence id; every cache (replay, revocation, verified licences) keys on it
``sub``        buyer id
``cnf``        device binding, RFC 7800 style: ``{"dev": device id, "sig": Ed25519
               public key, "kem": X25519 public key}`` (raw keys, base64url)
``work``       work id
``root``       the work manifest's Merkle root (hex)
``mark``       watermark payload, a 64-bit unsigned integer as a decimal string
               (JSON numbers above 2**53 do not survive every parser)
``uses``       permitted uses, a sorted list from ``terms.Use``; deny by default
``iat``        issued at (Unix seconds)
``exp``        expires at (Unix seconds)
``bytes``      byte allowance: the most ciphertext bytes the platform will pay
               peers for under this licence
``wrapped_key`` content key + watermark key, HPKE-wrapped to ``cnf.kem``
               (base64url, 112 bytes; see ``key_wrap``); for a sealed licence the
               second key is the licence's *table key* (``sealed_tables``), never the
               work's watermark key
``seal``       optional, sealed delivery only: ``{"table": SHA-256 of the encrypted
               personal table (hex), "size": its length in bytes}``; the agent fetches
               the table from the platform and refuses any other bytes
=============  ===================================================================
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .device import DeviceKeys, DevicePublicKeys
from .encoding import ClaimReader, b64url_encode, check_identifier
from .errors import (
    ExpiredError,
    MalformedError,
    MismatchError,
    NotPermittedError,
    WrongDeviceError,
)
from .jws import DEFAULT_LEEWAY, check_lifetime
from .key_wrap import (
    WRAPPED_BYTES,
    LicenceKeys,
    binding_info,
    unwrap_licence_keys,
    wrap_licence_keys,
)
from .keyring import KeyRing
from .kinds import DocumentKind
from .manifest import Manifest
from .merkle import HASH_BYTES
from .sealed_tables import MAX_TABLE_BYTES, TAG_BYTES
from .terms import Use, parse_use, parse_uses

MAX_WATERMARK_PAYLOAD = 2**64 - 1
_MARK = re.compile(r"^(0|[1-9][0-9]{0,19})$")
_CLAIMS = frozenset(
    ("jti", "sub", "cnf", "work", "root", "mark", "uses", "iat", "exp", "bytes", "wrapped_key")
)
_OPTIONAL_CLAIMS = frozenset(("seal",))
_SEAL_MEMBERS = frozenset(("table", "size"))


@dataclass(frozen=True)
class SealClaim:
    """What a sealed licence binds of its encrypted personal table: digest and size."""

    table_sha256: bytes
    size: int

    def __post_init__(self) -> None:
        if not isinstance(self.table_sha256, bytes) or len(self.table_sha256) != HASH_BYTES:
            raise MalformedError("a seal's table digest is a SHA-256")
        if type(self.size) is not int or not TAG_BYTES < self.size <= MAX_TABLE_BYTES:
            raise MalformedError(
                f"a seal's table size is {TAG_BYTES + 1} to {MAX_TABLE_BYTES} bytes")

    def to_claim(self) -> dict[str, Any]:
        return {"table": self.table_sha256.hex(), "size": self.size}

    @classmethod
    def from_claim(cls, value: object) -> SealClaim:
        """Strict: an object with exactly ``table`` (64 lowercase hex) and ``size``."""
        if not isinstance(value, dict) or value.keys() != _SEAL_MEMBERS:
            raise MalformedError("licence claim 'seal' is {\"table\", \"size\"}")
        reader = ClaimReader(value, required=_SEAL_MEMBERS, what="licence seal")
        return cls(table_sha256=reader.hex("table", length=HASH_BYTES),
                   size=reader.integer("size"))


@dataclass(frozen=True)
class Licence:
    """A verified licence. Build one with ``read_licence``, never by hand from a token."""

    licence_id: str
    buyer: str
    device: DevicePublicKeys
    work_id: str
    manifest_root: bytes
    watermark_payload: int
    uses: frozenset[Use]
    issued_at: int
    expires_at: int
    byte_allowance: int
    wrapped_keys: bytes = field(repr=False)
    #: the platform key that signed it
    kid: str
    #: sealed delivery: the personal table this licence names; None for a marked work
    seal: SealClaim | None = None

    @property
    def sealed(self) -> bool:
        return self.seal is not None

    @property
    def device_id(self) -> str:
        return self.device.device_id

    def permits(self, use: str) -> bool:
        """Does the licence grant ``use``? An unknown term raises ``UnknownTermError``."""
        return parse_use(use) in self.uses

    def require(self, use: str) -> None:
        if not self.permits(use):
            raise NotPermittedError(f"the licence does not permit {use!r}")

    def check_current(self, *, now: int, leeway: int = DEFAULT_LEEWAY) -> None:
        """Refuse the licence past its expiry."""
        if now > self.expires_at + leeway:
            raise ExpiredError("the licence has expired")

    def check_manifest(self, manifest: Manifest) -> None:
        """The licence and manifest must name the same work and the same ciphertext."""
        if manifest.work_id != self.work_id or manifest.root != self.manifest_root:
            raise MismatchError("the licence is for another work or manifest")

    def key_binding_info(self) -> bytes:
        return binding_info(
            licence_id=self.licence_id,
            work_id=self.work_id,
            manifest_root=self.manifest_root,
            device_id=self.device_id,
        )

    def unwrap_keys(self, device: DeviceKeys) -> LicenceKeys:
        """Open the content and watermark keys on the licensed device only (for a sealed
        licence the second key is its table key)."""
        if device.device_id != self.device_id:
            raise WrongDeviceError("the licence is bound to another device")
        return unwrap_licence_keys(
            self.wrapped_keys, private_key=device.kem_private_key, info=self.key_binding_info()
        )


def _check_watermark_payload(value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_WATERMARK_PAYLOAD:
        raise MalformedError("the watermark payload is a 64-bit unsigned integer")
    return value


def issue_licence(
    *,
    keyring: KeyRing,
    licence_id: str,
    buyer: str,
    device: DevicePublicKeys,
    manifest: Manifest,
    watermark_payload: int,
    uses: Iterable[str],
    issued_at: int,
    expires_at: int,
    byte_allowance: int,
    keys: LicenceKeys,
    seal: SealClaim | None = None,
) -> str:
    """Sign a licence for ``device``, wrapping ``keys`` to it. Returns the token.

    Unique ids and watermark payloads are the platform's job; this only carries them.
    For a sealed work, ``keys.watermark_key`` must be the licence's table key and
    ``seal`` its table's claim: the caller derives both (``sealed_tables``).
    """
    if seal is not None and not isinstance(seal, SealClaim):
        raise MalformedError("seal is a SealClaim")
    check_identifier(licence_id, what="licence id")
    check_identifier(buyer, what="buyer id")
    _check_watermark_payload(watermark_payload)
    granted = parse_uses(uses)
    if type(byte_allowance) is not int or byte_allowance < 0:
        raise MalformedError("the byte allowance is a non-negative integer")
    if type(issued_at) is not int or type(expires_at) is not int or expires_at <= issued_at:
        raise MalformedError("a licence must expire after it is issued")
    info = binding_info(
        licence_id=licence_id,
        work_id=manifest.work_id,
        manifest_root=manifest.root,
        device_id=device.device_id,
    )
    claims: dict[str, Any] = {
        "jti": licence_id,
        "sub": buyer,
        "cnf": device.to_cnf(),
        "work": manifest.work_id,
        "root": manifest.root_hex,
        "mark": str(watermark_payload),
        "uses": sorted(u.value for u in granted),
        "iat": issued_at,
        "exp": expires_at,
        "bytes": byte_allowance,
        "wrapped_key": b64url_encode(wrap_licence_keys(keys, recipient=device, info=info)),
    }
    if seal is not None:
        claims["seal"] = seal.to_claim()
    return keyring.sign(DocumentKind.LICENCE, claims)


def licence_from_claims(kid: str, claims: dict[str, Any]) -> Licence:
    """Build a ``Licence`` from verified claims, strictly."""
    reader = ClaimReader(claims, required=_CLAIMS, optional=_OPTIONAL_CLAIMS, what="licence")
    mark = reader.raw("mark")
    if not isinstance(mark, str) or not _MARK.fullmatch(mark):
        raise MalformedError("licence claim 'mark' must be a decimal string")
    uses = reader.raw("uses")
    if not isinstance(uses, list):
        raise MalformedError("licence claim 'uses' must be a list")
    issued_at, expires_at = reader.integer("iat"), reader.integer("exp")
    if expires_at <= issued_at:
        raise MalformedError("a licence must expire after it is issued")
    return Licence(
        licence_id=reader.identifier("jti"),
        buyer=reader.identifier("sub"),
        device=DevicePublicKeys.from_cnf(reader.raw("cnf")),
        work_id=reader.identifier("work"),
        manifest_root=reader.hex("root", length=HASH_BYTES),
        watermark_payload=_check_watermark_payload(int(mark)),
        uses=parse_uses(uses),
        issued_at=issued_at,
        expires_at=expires_at,
        byte_allowance=reader.integer("bytes"),
        wrapped_keys=reader.b64url("wrapped_key", length=WRAPPED_BYTES),
        kid=kid,
        seal=SealClaim.from_claim(reader.raw("seal")) if reader.has("seal") else None,
    )


def read_licence(
    token: object,
    *,
    keyring: KeyRing,
    now: int,
    leeway: int = DEFAULT_LEEWAY,
    device_id: str | None = None,
) -> Licence:
    """Verify a licence token: platform signature, typ, claims, times.

    Pass ``device_id`` on the device to refuse a licence bound to another device.
    Revocation is checked separately (``RevocationList.check_licence``).
    """
    kid, claims = keyring.verify(token, DocumentKind.LICENCE)
    licence = licence_from_claims(kid, claims)
    check_lifetime(
        issued_at=licence.issued_at, expires_at=licence.expires_at, now=now, leeway=leeway
    )
    if device_id is not None and device_id != licence.device_id:
        raise WrongDeviceError("the licence is bound to another device")
    return licence
