"""Wrapping a licence's keys to the buyer's device with HPKE (RFC 9180).

A licence carries the work's content key and watermark key (32 bytes each),
encrypted to the device's X25519 key in HPKE base mode with the suite
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. The wrapped value is
``enc (32) || ciphertext (64) || tag (16)`` = 112 bytes.

``cryptography``'s HPKE has no associated-data argument, so the context is bound
through ``info``:

    b"peermark-licence-keys-v1" || for each of (licence id, work id,
    manifest root (32 raw bytes), device id): u16 big-endian length || bytes

so a wrapped key lifted into another licence, work, manifest or device does
not open, and only the device holding the X25519 private key opens it at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from .device import DevicePublicKeys
from .encoding import check_identifier
from .errors import MalformedError, UnwrapFailedError

SUITE_NAME = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM"
KEY_BYTES = 32
WRAPPED_BYTES = 32 + 2 * KEY_BYTES + 16
_INFO_LABEL = b"peermark-licence-keys-v1"
# An immutable algorithm choice, not state.
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)


@dataclass(frozen=True)
class LicenceKeys:
    """The secrets a licence delivers: the content key and the watermark key."""

    content_key: bytes = field(repr=False)
    watermark_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        for name in ("content_key", "watermark_key"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != KEY_BYTES:
                raise MalformedError(f"{name} is {KEY_BYTES} bytes")


def binding_info(*, licence_id: str, work_id: str, manifest_root: bytes, device_id: str) -> bytes:
    """The HPKE ``info`` that binds a wrapped key to its licence, work, manifest and device."""
    parts = [
        check_identifier(licence_id, what="licence id").encode("ascii"),
        check_identifier(work_id, what="work id").encode("ascii"),
        manifest_root,
        check_identifier(device_id, what="device id").encode("ascii"),
    ]
    return _INFO_LABEL + b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def wrap_licence_keys(keys: LicenceKeys, *, recipient: DevicePublicKeys, info: bytes) -> bytes:
    """Encrypt both keys to the device's X25519 public key."""
    try:
        return _SUITE.encrypt(keys.content_key + keys.watermark_key, recipient.kem_key, info=info)
    except ValueError as error:  # e.g. a low-order X25519 point
        raise MalformedError("cannot wrap to this device key") from error


def unwrap_licence_keys(
    wrapped: bytes, *, private_key: X25519PrivateKey, info: bytes
) -> LicenceKeys:
    """Open wrapped keys with the device's X25519 private key, or ``UnwrapFailedError``."""
    if len(wrapped) != WRAPPED_BYTES:
        raise UnwrapFailedError(f"wrapped keys are {WRAPPED_BYTES} bytes")
    try:
        plaintext = _SUITE.decrypt(wrapped, private_key, info=info)
    except (InvalidTag, ValueError):
        raise UnwrapFailedError("these keys were not wrapped to this device and licence") from None
    return LicenceKeys(content_key=plaintext[:KEY_BYTES], watermark_key=plaintext[KEY_BYTES:])
