"""The pure licensing core: no Django, no global state, clocks and randomness injected.

The platform (Django side) issues with it; the desktop agent and serving peers
verify with it offline. Modules, by what they do:

* ``errors``: the ``LicensingError`` family, the only exceptions raised here
* ``kinds``: the seven signed document kinds and their ``typ`` values
* ``terms``: the closed vocabulary of licence uses
* ``jws``: our JWS profile (Ed25519 only, ``kid`` and ``typ`` required)
* ``keyring``: platform keys, states, rotation rules, JWKS
* ``device``: a device's key pairs, key file, device id
* ``pieces``, ``merkle``, ``manifest``, ``packaging``: encrypted content
* ``key_wrap``: HPKE wrapping of a licence's keys to a device
* ``at_rest``: wrapping secrets under the platform's key-encryption key
* ``sealed_tables``: a sealed licence's personal table, encrypted for that licence
* ``licence``, ``revocation``, ``orders``, ``replay``, ``receipts``: the documents
* ``compute_results``: what a contributor's device signs for a compute work unit
* ``direct_messages``: a member's text sealed to another member's device (HPKE), signed

See docs/TOKENS.md for the formats and docs/THREAT_MODEL.md for why.
"""

from __future__ import annotations

from .at_rest import unwrap_at_rest, wrap_at_rest
from .compute_results import (
    ComputeResult,
    ComputeStop,
    read_compute_result,
    sign_compute_result,
)
from .device import DeviceKeys, DevicePublicKeys
from .direct_messages import (
    DirectMessage,
    MessageText,
    direct_message_signer,
    new_message_id,
    open_direct_message,
    read_direct_message,
    seal_direct_message,
)
from .errors import (
    BadHeaderError,
    BadPieceError,
    BadSignatureError,
    BadTableError,
    DecryptionFailedError,
    EquivocationError,
    ExpiredError,
    InsecureKeyFileError,
    KeyFileError,
    KeyStateError,
    LicensingError,
    MalformedError,
    MismatchError,
    MissingKeyIdError,
    NotPermittedError,
    NotYetValidError,
    OversizedError,
    PackagingError,
    PieceOutOfRangeError,
    ReplayedError,
    RetiredKeyError,
    RevokedError,
    RollbackError,
    UnknownKeyError,
    UnknownTermError,
    UnwrapFailedError,
    WrongAlgorithmError,
    WrongDeviceError,
    WrongPeerError,
    WrongTypeError,
)
from .jws import DEFAULT_LEEWAY
from .key_wrap import LicenceKeys
from .keyring import KeyRing, KeyState, PlatformKey, may_activate, may_retire
from .kinds import DocumentKind
from .licence import Licence, SealClaim, issue_licence, read_licence
from .manifest import Manifest, read_manifest, sign_manifest, verify_piece
from .orders import Order, OrderVerifier, read_order, sign_order
from .packaging import PackagedWork, decrypt_work, open_piece, package_work, read_piece
from .pieces import DEFAULT_PIECE_SIZE
from .receipts import Receipt, UnmarkedReason, read_receipt, sign_receipt
from .replay import ReplayCache
from .revocation import (
    RevocationList,
    RevocationStore,
    read_revocation_list,
    sign_revocation_list,
)
from .terms import USE_DESCRIPTIONS, Use, parse_uses

__all__ = [
    "DEFAULT_LEEWAY",
    "DEFAULT_PIECE_SIZE",
    "USE_DESCRIPTIONS",
    "BadHeaderError",
    "BadPieceError",
    "BadSignatureError",
    "BadTableError",
    "ComputeResult",
    "ComputeStop",
    "DecryptionFailedError",
    "DeviceKeys",
    "DevicePublicKeys",
    "DirectMessage",
    "DocumentKind",
    "EquivocationError",
    "ExpiredError",
    "InsecureKeyFileError",
    "KeyFileError",
    "KeyRing",
    "KeyState",
    "KeyStateError",
    "Licence",
    "LicenceKeys",
    "LicensingError",
    "MalformedError",
    "Manifest",
    "MessageText",
    "MismatchError",
    "MissingKeyIdError",
    "NotPermittedError",
    "NotYetValidError",
    "Order",
    "OrderVerifier",
    "OversizedError",
    "PackagedWork",
    "PackagingError",
    "PieceOutOfRangeError",
    "PlatformKey",
    "Receipt",
    "ReplayCache",
    "ReplayedError",
    "RetiredKeyError",
    "RevocationList",
    "RevocationStore",
    "RevokedError",
    "RollbackError",
    "SealClaim",
    "UnknownKeyError",
    "UnknownTermError",
    "UnmarkedReason",
    "UnwrapFailedError",
    "Use",
    "WrongAlgorithmError",
    "WrongDeviceError",
    "WrongPeerError",
    "WrongTypeError",
    "decrypt_work",
    "direct_message_signer",
    "issue_licence",
    "may_activate",
    "may_retire",
    "new_message_id",
    "open_direct_message",
    "open_piece",
    "package_work",
    "parse_uses",
    "read_compute_result",
    "read_direct_message",
    "read_licence",
    "read_manifest",
    "read_order",
    "read_piece",
    "read_receipt",
    "read_revocation_list",
    "seal_direct_message",
    "sign_compute_result",
    "sign_manifest",
    "sign_order",
    "sign_receipt",
    "sign_revocation_list",
    "unwrap_at_rest",
    "verify_piece",
    "wrap_at_rest",
]
