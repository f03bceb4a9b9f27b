"""Orders: what a downloading device signs for each piece it asks of a peer.

Claims (typ ``pm-order+jwt``, signed by the DEVICE's Ed25519 key; ``kid`` is the
device id, and the key that verifies it is the licence's ``cnf`` key):

    lic    licence id (the licence's ``jti``)
    peer   the serving peer's id
    piece  piece index
    bytes  byte count asked for: exactly that piece's ciphertext length
    nonce  16 random bytes, base64url
    iat    when the order was made (Unix seconds)

A serving peer calls ``OrderVerifier.verify`` offline before sending a piece.
The platform, at settlement, calls ``read_order`` on the orders a peer submits.
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from .device import DeviceKeys
from .encoding import ClaimReader, b64url_encode, check_identifier
from .errors import (
    ExpiredError,
    MalformedError,
    MismatchError,
    NotYetValidError,
    WrongDeviceError,
    WrongPeerError,
)
from .jws import (
    DEFAULT_LEEWAY,
    HeaderCache,
    UnverifiedDocument,
    parse_document,
    verify_signature,
)
from .keyring import KeyRing
from .kinds import DocumentKind
from .licence import Licence, read_licence
from .manifest import Manifest
from .replay import ReplayCache
from .revocation import RevocationList

NONCE_BYTES = 16
# 16 bytes in canonical unpadded base64url: 21 free characters, then one whose
# low four bits are zero.
_NONCE = re.compile(r"^[A-Za-z0-9_-]{21}[AQgw]$")
#: orders older or newer than this many seconds are refused
DEFAULT_ORDER_WINDOW = 120
DEFAULT_LICENCE_CACHE_SIZE = 4096
_MAX_INT = 2**63 - 1
_CLAIMS = frozenset(("lic", "peer", "piece", "bytes", "nonce", "iat"))


class Order(NamedTuple):
    """A verified order (a named tuple: immutable and cheap on the hot path)."""

    licence_id: str
    peer_id: str
    piece: int
    byte_count: int
    nonce: str
    issued_at: int
    device_id: str


def sign_order(
    device: DeviceKeys,
    *,
    licence_id: str,
    peer_id: str,
    piece: int,
    byte_count: int,
    issued_at: int,
    random: Callable[[int], bytes] = os.urandom,
) -> str:
    """Sign an order for one piece with the device key."""
    check_identifier(licence_id, what="licence id")
    check_identifier(peer_id, what="peer id")
    for name, value in (("piece", piece), ("byte_count", byte_count), ("issued_at", issued_at)):
        if type(value) is not int or value < 0:
            raise MalformedError(f"{name} is a non-negative integer")
    claims = {
        "lic": licence_id,
        "peer": peer_id,
        "piece": piece,
        "bytes": byte_count,
        "nonce": b64url_encode(random(NONCE_BYTES)),
        "iat": issued_at,
    }
    return device.sign(DocumentKind.ORDER, claims)


def _verified_order(
    document: UnverifiedDocument, licence: Licence, *, expected_peer: str | None = None
) -> Order:
    """Check device binding and signature, then read the claims.

    With ``expected_peer`` (a checked identifier), the order must be addressed to it.
    """
    if document.kid != licence.device_id:
        raise WrongDeviceError("the order is signed by another device than the licence's")
    verify_signature(document, licence.device.signing_key)
    # The hot path of every serving peer: read the six claims directly.
    claims = document.claims
    if claims.keys() != _CLAIMS:
        ClaimReader(claims, required=_CLAIMS, what="order")  # raises, naming the claims
    # licence.licence_id is a checked identifier, so equality also checks the claim.
    if claims["lic"] != licence.licence_id:
        raise MismatchError("the order is for another licence")
    if expected_peer is None:
        peer_id = check_identifier(claims["peer"], what="order claim 'peer'")
    elif claims["peer"] == expected_peer:
        peer_id = expected_peer
    else:
        raise WrongPeerError("the order is addressed to another peer")
    nonce = claims["nonce"]
    if type(nonce) is not str or not _NONCE.fullmatch(nonce):
        raise MalformedError("order nonce must be 16 bytes in canonical base64url")
    piece, byte_count, issued_at = claims["piece"], claims["bytes"], claims["iat"]
    if not (
        type(piece) is int
        and type(byte_count) is int
        and type(issued_at) is int
        and 0 <= piece <= _MAX_INT
        and 0 <= byte_count <= _MAX_INT
        and 0 <= issued_at <= _MAX_INT
    ):
        raise MalformedError("order piece, bytes and iat are non-negative integers")
    return Order(
        licence_id=licence.licence_id,
        peer_id=peer_id,
        piece=piece,
        byte_count=byte_count,
        nonce=nonce,
        issued_at=issued_at,
        device_id=licence.device_id,
    )


def read_order(token: object, *, licence: Licence) -> Order:
    """Verify an order's signature and binding to ``licence`` (no time or replay checks).

    For the platform at settlement, which drops duplicates by (licence id, nonce)
    itself and caps at the licence's byte allowance.
    """
    return _verified_order(parse_document(token, DocumentKind.ORDER), licence)


class OrderVerifier:
    """What a serving peer runs, offline, before it sends a piece.

    It checks the licence (platform signature, expiry, revocation, same work and
    manifest), the order (signed by the licence's device, addressed to this peer,
    piece within the manifest, byte count equal to the piece's length, made within
    ``window`` seconds of now) and the nonce (unseen, in a bounded replay cache).

    Verified licences are cached by ``jti`` together with their exact token text:
    a stream of orders under one licence verifies the licence once, and a
    different token claiming the same ``jti`` is verified from scratch.
    """

    def __init__(
        self,
        *,
        keyring: KeyRing,
        peer_id: str,
        window: int = DEFAULT_ORDER_WINDOW,
        leeway: int = DEFAULT_LEEWAY,
        replay_cache: ReplayCache | None = None,
        licence_cache_size: int = DEFAULT_LICENCE_CACHE_SIZE,
    ) -> None:
        self._keyring = keyring
        self._peer_id = check_identifier(peer_id, what="peer id")
        self._window = window
        self._leeway = leeway
        self._replay = replay_cache if replay_cache is not None else ReplayCache()
        self._licences: OrderedDict[str, tuple[object, Licence]] = OrderedDict()
        self._licence_cache_size = licence_cache_size
        self._headers: HeaderCache = {}

    def replace_keyring(self, keyring: KeyRing) -> None:
        """Use a newly fetched key ring; licences verified under the old one are dropped."""
        self._keyring = keyring
        self._licences.clear()

    def licence(self, licence_id: str, licence_token: object, *, now: int) -> Licence:
        """The verified licence for ``licence_id``, from the cache or verified now."""
        cached = self._licences.get(licence_id)
        if cached is not None and cached[0] == licence_token:
            self._licences.move_to_end(licence_id)
            return cached[1]
        licence = read_licence(licence_token, keyring=self._keyring, now=now, leeway=self._leeway)
        if licence.licence_id != licence_id:
            raise MismatchError("the order is for another licence")
        self._licences[licence_id] = (licence_token, licence)
        if len(self._licences) > self._licence_cache_size:
            self._licences.popitem(last=False)
        return licence

    def verify(
        self,
        order_token: object,
        licence_token: object,
        *,
        manifest: Manifest,
        revocations: RevocationList,
        now: int,
    ) -> Order:
        """Verify an order and its licence; return the order, or raise a ``LicensingError``."""
        document = parse_document(order_token, DocumentKind.ORDER, header_cache=self._headers)
        licence_id = check_identifier(document.claims.get("lic"), what="order claim 'lic'")
        licence = self.licence(licence_id, licence_token, now=now)
        licence.check_current(now=now, leeway=self._leeway)
        if not revocations.is_fresh(now=now, leeway=self._leeway):
            raise ExpiredError("the revocation list is past its next update; fetch a new one")
        revocations.check_licence(licence)
        licence.check_manifest(manifest)
        order = _verified_order(document, licence, expected_peer=self._peer_id)
        if order.byte_count != manifest.piece_length(order.piece):
            raise MismatchError("the order's byte count is not the piece's length")
        if order.issued_at < now - self._window:
            raise ExpiredError("the order is older than its window")
        if order.issued_at > now + self._window:
            raise NotYetValidError("the order is dated in the future")
        self._replay.check_and_add(
            (order.licence_id, order.nonce), expires_at=order.issued_at + self._window + 1, now=now
        )
        return order
