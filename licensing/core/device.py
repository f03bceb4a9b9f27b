"""Device identity: each agent install's Ed25519 (signing) and X25519 (receiving) keys.

The private halves never leave the device: ``DeviceKeys.save`` writes them to a
file only its owner can read (mode 0600) and ``DeviceKeys.load`` refuses a file
that group or others can read. The public halves (``DevicePublicKeys``) are what
the platform registers and what a licence's ``cnf`` claim carries.

The device id commits to both public keys: it is the base64url SHA-256 of the
canonical JSON ``{"kem": <x25519 b64url>, "sig": <ed25519 b64url>}`` (members in
lexicographic order, no whitespace: the RFC 7638 thumbprint method applied to
the pair), so one id can never stand for two different key pairs.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from joserfc.jwk import OKPKey

from .curves import BadCurveKeyError, check_ed25519_public, check_x25519_public
from .encoding import b64url_decode, b64url_encode, canonical_json, strict_json_object
from .errors import (
    InsecureKeyFileError,
    KeyFileError,
    KeyStateError,
    MalformedError,
    OversizedError,
    WrongDeviceError,
)
from .jws import sign_document
from .kinds import DocumentKind

KEY_FILE_FORMAT = "peermark-device-keys"
KEY_FILE_VERSION = 1
_MAX_KEY_FILE_BYTES = 4096
_CNF_MEMBERS = frozenset({"dev", "sig", "kem"})


def device_id_for(signing_public: bytes, kem_public: bytes) -> str:
    """The device id: a SHA-256 thumbprint over both raw public keys."""
    canonical = canonical_json(
        {"kem": b64url_encode(kem_public), "sig": b64url_encode(signing_public)}
    )
    return b64url_encode(hashlib.sha256(canonical).digest())


class InvalidDeviceKeyError(MalformedError):
    """A device public key that parses but cannot be used (``key``: "signing" or "kem")."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class DevicePublicKeys:
    """A device's public halves and its id; cheap to verify with (keys parsed once)."""

    signing: bytes
    kem: bytes
    device_id: str = field(init=False)
    signing_key: Ed25519PublicKey = field(init=False, repr=False, compare=False)
    kem_key: X25519PublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.signing, bytes) or len(self.signing) != 32:
            raise MalformedError("an Ed25519 public key is 32 bytes")
        if not isinstance(self.kem, bytes) or len(self.kem) != 32:
            raise MalformedError("an X25519 public key is 32 bytes")
        try:
            check_ed25519_public(self.signing)
        except BadCurveKeyError as error:
            raise InvalidDeviceKeyError(str(error), key="signing") from None
        try:
            check_x25519_public(self.kem)
        except BadCurveKeyError as error:
            raise InvalidDeviceKeyError(str(error), key="kem") from None
        try:
            signing_key = Ed25519PublicKey.from_public_bytes(self.signing)
            kem_key = X25519PublicKey.from_public_bytes(self.kem)
        except ValueError as error:
            raise MalformedError("not a valid device public key") from error
        object.__setattr__(self, "device_id", device_id_for(self.signing, self.kem))
        object.__setattr__(self, "signing_key", signing_key)
        object.__setattr__(self, "kem_key", kem_key)

    @classmethod
    def from_b64url(cls, *, signing: str, kem: str) -> DevicePublicKeys:
        """From the raw base64url public keys a device registers; a key that does not
        decode is an ``InvalidDeviceKeyError`` naming it, like one that cannot be used."""
        decoded: dict[str, bytes] = {}
        for key, text, what in (("signing", signing, "signing key"), ("kem", kem, "KEM key")):
            try:
                decoded[key] = b64url_decode(text, length=32, what=what)
            except MalformedError as error:
                raise InvalidDeviceKeyError(str(error), key=key) from None
        return cls(signing=decoded["signing"], kem=decoded["kem"])

    def to_b64url(self) -> dict[str, str]:
        """``{"sig": ..., "kem": ...}`` raw public keys in base64url, for registration."""
        return {"sig": b64url_encode(self.signing), "kem": b64url_encode(self.kem)}

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        """Both public keys as a JWKS (OKP Ed25519 for ``sig``, OKP X25519 for ``enc``)."""
        return {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(self.signing), "use": "sig"},
                {"kty": "OKP", "crv": "X25519", "x": b64url_encode(self.kem), "use": "enc"},
            ]
        }

    def to_cnf(self) -> dict[str, str]:
        """The licence's ``cnf`` claim (RFC 7800 style): device id and both public keys."""
        return {"dev": self.device_id, **self.to_b64url()}

    @classmethod
    def from_cnf(cls, value: object) -> DevicePublicKeys:
        """Read a ``cnf`` claim; its device id must match its keys."""
        if not isinstance(value, Mapping) or set(value) != _CNF_MEMBERS:
            raise MalformedError('cnf must be {"dev", "sig", "kem"}')
        keys = cls.from_b64url(signing=value["sig"], kem=value["kem"])
        if value["dev"] != keys.device_id:
            raise MalformedError("cnf device id does not match its keys")
        return keys


class DeviceKeys:
    """A device's private keys. Never serialised except by ``save`` to an owner-only file."""

    def __init__(self, *, signing_key: Ed25519PrivateKey, kem_key: X25519PrivateKey) -> None:
        self._signing_key = signing_key
        self._kem_key = kem_key
        self._signing_jwk = OKPKey.import_key(signing_key)
        self.public = DevicePublicKeys(
            signing=signing_key.public_key().public_bytes_raw(),
            kem=kem_key.public_key().public_bytes_raw(),
        )

    @classmethod
    def generate(cls) -> DeviceKeys:
        return cls(signing_key=Ed25519PrivateKey.generate(), kem_key=X25519PrivateKey.generate())

    def __repr__(self) -> str:
        return f"DeviceKeys(device_id={self.device_id!r})"

    @property
    def device_id(self) -> str:
        return self.public.device_id

    @property
    def kem_private_key(self) -> X25519PrivateKey:
        """The X25519 private key that opens keys wrapped to this device."""
        return self._kem_key

    def sign(self, kind: DocumentKind, claims: dict[str, Any]) -> str:
        """Sign a device document (order or receipt); the ``kid`` is the device id."""
        if kind.signer != "device":
            raise KeyStateError(f"{kind.label} documents are signed by the platform")
        return sign_document(kind, claims, kid=self.device_id, key=self._signing_jwk)

    def require(self, device_id: str) -> None:
        """Refuse a document bound to another device."""
        if device_id != self.device_id:
            raise WrongDeviceError("bound to another device")

    # --- the key file -------------------------------------------------------------

    def _file_bytes(self) -> bytes:
        return canonical_json(
            {
                "format": KEY_FILE_FORMAT,
                "version": KEY_FILE_VERSION,
                "sig": b64url_encode(self._signing_key.private_bytes_raw()),
                "kem": b64url_encode(self._kem_key.private_bytes_raw()),
            }
        )

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the keys to ``path`` with mode 0600, atomically.

        Refuses to replace an existing file unless ``overwrite``: losing a device
        identity loses the licences bound to it.
        """
        target = Path(path)
        try:
            descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".device-keys-")
        except OSError as error:
            raise KeyFileError(f"cannot write next to {target}: {error}") from error
        # mkstemp creates the file readable and writable by its owner only (0600).
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(self._file_bytes())
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(temporary, target)
            else:
                os.link(temporary, target)  # atomic, and fails if the target exists
        except FileExistsError:
            raise KeyFileError(
                f"{target} exists; refusing to overwrite a device identity"
            ) from None
        except OSError as error:
            raise KeyFileError(f"cannot write {target}: {error}") from error
        finally:
            Path(temporary).unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DeviceKeys:
        """Read keys saved by ``save``; refuse a file group or others may read."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            descriptor = os.open(path, flags)
        except OSError as error:
            raise KeyFileError(f"cannot open {path}: {error}") from error
        with os.fdopen(descriptor, "rb") as handle:
            info = os.fstat(handle.fileno())
            _check_owner_only(info, path)
            data = handle.read(_MAX_KEY_FILE_BYTES + 1)
        if len(data) > _MAX_KEY_FILE_BYTES:
            raise OversizedError("device key file too large")
        content = strict_json_object(data, what="device key file")
        if (
            set(content) != {"format", "version", "sig", "kem"}
            or content["format"] != KEY_FILE_FORMAT
            or content["version"] != KEY_FILE_VERSION
        ):
            raise MalformedError("not a peermark device key file (version 1)")
        signing = b64url_decode(content["sig"], length=32, what="signing key")
        kem = b64url_decode(content["kem"], length=32, what="KEM key")
        return cls(
            signing_key=Ed25519PrivateKey.from_private_bytes(signing),
            kem_key=X25519PrivateKey.from_private_bytes(kem),
        )


def _check_owner_only(info: os.stat_result, path: str | os.PathLike[str]) -> None:
    if sys.platform == "win32":  # POSIX modes do not describe Windows ACLs
        return
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{path} is not a regular file")
    if info.st_mode & 0o077:
        raise InsecureKeyFileError(
            f"{path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0600 (owner only)"
        )
    if info.st_uid != os.getuid():
        raise InsecureKeyFileError(f"{path} belongs to another user")
