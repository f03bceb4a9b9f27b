"""The one exception family the licensing core raises.

Every failure the core reports, from a malformed token to a replayed order, is a
``LicensingError``. Callers that talk to untrusted peers catch that one class;
nothing else (no ``KeyError``, ``ValueError`` or ``binascii.Error``) escapes
the parsers. The subclasses say what went wrong precisely enough for a test or
an HTTP error code to tell them apart.
"""

from __future__ import annotations


class LicensingError(Exception):
    """Base class: any failure reported by ``licensing.core``."""


# --- input that cannot be read -------------------------------------------------


class MalformedError(LicensingError):
    """The input cannot be parsed, or it breaks the document's format."""


class OversizedError(MalformedError):
    """The input is larger than its kind allows; refused before parsing."""


class BadHeaderError(MalformedError):
    """The JWS protected header breaks our profile (extra members, bad types)."""


class MissingKeyIdError(BadHeaderError):
    """The JWS header names no ``kid``; we never guess the key."""


class WrongAlgorithmError(BadHeaderError):
    """The JWS header's ``alg`` is not the one algorithm we accept (Ed25519)."""


class WrongTypeError(BadHeaderError):
    """The JWS header's ``typ`` is missing or names another document kind."""


class UnknownTermError(MalformedError):
    """A licence term outside the closed vocabulary: an error, never a permission."""


# --- keys and signatures --------------------------------------------------------


class BadSignatureError(LicensingError):
    """The signature does not verify under the named key."""


class UnknownKeyError(LicensingError):
    """The ``kid`` is not in the key ring we verify with."""


class RetiredKeyError(LicensingError):
    """The ``kid`` names a retired key: it no longer verifies anything."""


class KeyStateError(LicensingError):
    """A key ring operation the rotation rules forbid (e.g. retiring too early)."""


class KeyFileError(LicensingError):
    """A device key file cannot be read or written."""


class InsecureKeyFileError(KeyFileError):
    """A device key file readable by group or others, or owned by someone else."""


# --- time -----------------------------------------------------------------------


class ExpiredError(LicensingError):
    """The document is past its ``exp`` (or an order is past its window)."""


class NotYetValidError(LicensingError):
    """The document's ``iat`` lies in the future beyond the allowed leeway."""


# --- binding and replay -----------------------------------------------------------


class RevokedError(LicensingError):
    """The licence or the device it is bound to is on the revocation list."""


class ReplayedError(LicensingError):
    """An order nonce already seen within its window (or too old to prove fresh)."""


class WrongDeviceError(LicensingError):
    """The document is bound to, or signed by, another device."""


class WrongPeerError(LicensingError):
    """The order is addressed to another serving peer."""


class MismatchError(LicensingError):
    """Two documents that must agree do not (licence vs manifest, order vs licence)."""


class RollbackError(LicensingError):
    """A revocation list older than the one already held."""


class EquivocationError(LicensingError):
    """Two different revocation lists signed under one version: the signer equivocates.

    The platform publishes one list per version, so a second, different list under a
    version already seen means its key is compromised or something serves forged-but-
    signed lists to some peers. ``first`` and ``second`` are the two tokens (``first``
    is the one kept; either may be None when only parsed lists were compared): the
    evidence to report.
    """

    def __init__(self, message: str, *, first: str | None = None,
                 second: str | None = None) -> None:
        super().__init__(message)
        self.first = first
        self.second = second


class NotPermittedError(LicensingError):
    """The licence does not grant the requested use."""


# --- content ----------------------------------------------------------------------


class PieceOutOfRangeError(LicensingError):
    """A piece index outside the manifest."""


class BadPieceError(LicensingError):
    """A ciphertext piece of the wrong length or with the wrong hash."""


class DecryptionFailedError(LicensingError):
    """The AEAD refused a piece: wrong key, or a piece moved to another position."""


class UnwrapFailedError(LicensingError):
    """A wrapped key does not open: wrong recipient, wrong binding, or tampered."""


class BadTableError(LicensingError):
    """A sealed licence's table is not the one it names, or does not open with its key."""


class PackagingError(LicensingError):
    """The master cannot be packaged (empty, size changed while reading, ...)."""
