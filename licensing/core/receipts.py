"""Receipts: what the buyer's device signs once it has written its copy.

Claims (typ ``pm-receipt+jwt``, signed by the DEVICE's Ed25519 key; ``kid`` is
the device id):

    jti              receipt id (16 random bytes, base64url)
    lic              licence id
    sha256           SHA-256 of the output copy as written (hex)
    served           {serving peer id: ciphertext bytes it served}
    marked           whether the watermark was embedded
    unmarked_reason  only when not marked: one of ``UnmarkedReason``
    iat              when the copy was written

The platform verifies it with ``read_receipt`` against the licence, then
releases escrow. The recorded ``sha256`` is what a later audit compares with a
copy marked from the master.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from .device import DeviceKeys
from .encoding import ClaimReader, b64url_encode, check_identifier
from .errors import MalformedError, MismatchError, WrongDeviceError
from .jws import DEFAULT_LEEWAY, check_lifetime, parse_document, verify_signature
from .kinds import DocumentKind
from .licence import Licence

RECEIPT_ID_BYTES = 16
MAX_SERVING_PEERS = 1024
_CLAIMS = frozenset(("jti", "lic", "sha256", "served", "marked", "iat"))


class UnmarkedReason(StrEnum):
    """Why a copy was written without a watermark (a closed vocabulary)."""

    UNSUPPORTED_FORMAT = "unsupported-format"
    TOO_SMALL = "too-small"
    EMBED_FAILED = "embed-failed"


@dataclass(frozen=True)
class Receipt:
    """A verified receipt."""

    receipt_id: str
    licence_id: str
    output_sha256: bytes
    served: Mapping[str, int]
    marked: bool
    unmarked_reason: UnmarkedReason | None
    issued_at: int
    device_id: str


def _check_served(served: object) -> dict[str, int]:
    if not isinstance(served, Mapping) or len(served) > MAX_SERVING_PEERS:
        raise MalformedError(f"served is a map of at most {MAX_SERVING_PEERS} peers to bytes")
    result: dict[str, int] = {}
    for peer, count in served.items():
        check_identifier(peer, what="serving peer id")
        if type(count) is not int or not 0 <= count < 2**63:
            raise MalformedError("bytes served is a non-negative integer")
        result[peer] = count
    return result


def sign_receipt(
    device: DeviceKeys,
    *,
    licence_id: str,
    output_sha256: bytes,
    served: Mapping[str, int],
    marked: bool,
    unmarked_reason: UnmarkedReason | None = None,
    issued_at: int,
    random: Callable[[int], bytes] = os.urandom,
) -> str:
    """Sign a receipt with the device key."""
    check_identifier(licence_id, what="licence id")
    if not isinstance(output_sha256, bytes) or len(output_sha256) != 32:
        raise MalformedError("the output hash is a 32-byte SHA-256")
    if marked != (unmarked_reason is None):
        raise MalformedError("give a reason exactly when the copy is not marked")
    claims: dict[str, object] = {
        "jti": b64url_encode(random(RECEIPT_ID_BYTES)),
        "lic": licence_id,
        "sha256": output_sha256.hex(),
        "served": _check_served(served),
        "marked": marked,
        "iat": issued_at,
    }
    if unmarked_reason is not None:
        claims["unmarked_reason"] = UnmarkedReason(unmarked_reason).value
    return device.sign(DocumentKind.RECEIPT, claims)


def read_receipt(
    token: object, *, licence: Licence, now: int, leeway: int = DEFAULT_LEEWAY
) -> Receipt:
    """Verify a receipt: signed by the licence's device, for that licence, not from the future."""
    document = parse_document(token, DocumentKind.RECEIPT)
    if document.kid != licence.device_id:
        raise WrongDeviceError("the receipt is signed by another device than the licence's")
    verify_signature(document, licence.device.signing_key)
    reader = ClaimReader(
        document.claims, required=_CLAIMS, optional=("unmarked_reason",), what="receipt"
    )
    licence_id = reader.identifier("lic")
    if licence_id != licence.licence_id:
        raise MismatchError("the receipt is for another licence")
    issued_at = reader.integer("iat")
    check_lifetime(issued_at=issued_at, expires_at=None, now=now, leeway=leeway)
    if issued_at < licence.issued_at - leeway:
        raise MismatchError("the receipt predates its licence")
    marked = reader.boolean("marked")
    reason: UnmarkedReason | None = None
    if reader.has("unmarked_reason"):
        if marked:
            raise MalformedError("a marked copy has no unmarked reason")
        try:
            reason = UnmarkedReason(reader.raw("unmarked_reason"))
        except ValueError:
            raise MalformedError("unknown unmarked reason") from None
    elif not marked:
        raise MalformedError("an unmarked copy must say why")
    reader.b64url("jti", length=RECEIPT_ID_BYTES)
    return Receipt(
        receipt_id=reader.raw("jti"),
        licence_id=licence_id,
        output_sha256=reader.hex("sha256", length=32),
        served=_check_served(reader.raw("served")),
        marked=marked,
        unmarked_reason=reason,
        issued_at=issued_at,
        device_id=licence.device_id,
    )
