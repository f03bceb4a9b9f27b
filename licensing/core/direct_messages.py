"""Direct messages: a member's text sealed to one device of another member.

The text is encrypted with HPKE (RFC 9180, base mode, the suite ``key_wrap`` uses:
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) to the recipient DEVICE's X25519
key, and the envelope is signed by the sender DEVICE's Ed25519 key, so that whoever
carries it (the recipient's peer server, or the platform relaying it) can check who sent
it and for whom, and nobody but that one device can read it.

Claims (typ ``pm-direct-message+jwt``, signed by the sender device; ``kid`` is its id):

    from   the sender's username
    fdev   the sender's device id (must equal ``kid``)
    to     the recipient's username
    tdev   the recipient's device id: the one device whose key opens ``ct``
    mid    the message id: 16 random bytes, base64url, the same in every device's copy
    iat    when it was sealed (Unix seconds)
    ct     the HPKE output ``enc (32) || ciphertext || tag (16)``, base64url

``cryptography``'s HPKE has no associated data, so the envelope is bound through
``info``: ``b"peermark-direct-message-v1"`` then, for each of (mid, from, fdev, to, tdev,
iat as decimal), a u16 big-endian length and the UTF-8 bytes. A ciphertext lifted into
another envelope (another sender, recipient, device or id) does not open.

The plaintext is the canonical JSON ``{"body": ..., "subject": ...}``, at most
``MAX_PLAINTEXT_BYTES``. The whole token is bounded by ``DocumentKind.DIRECT_MESSAGE``.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from .device import DeviceKeys, DevicePublicKeys
from .encoding import (
    ClaimReader,
    b64url_encode,
    canonical_json,
    strict_json_object,
)
from .errors import MalformedError, OversizedError, UnwrapFailedError, WrongDeviceError
from .jws import DEFAULT_LEEWAY, check_lifetime, parse_document, verify_signature
from .kinds import DocumentKind

MESSAGE_ID_BYTES = 16
#: the sealed text's largest size: 5,000 characters of four UTF-8 bytes, a subject of
#: 200 and the JSON around them fit
MAX_PLAINTEXT_BYTES = 24 * 1024
#: the longest username (Django's limit)
MAX_USERNAME_CHARS = 150
_INFO_LABEL = b"peermark-direct-message-v1"
_HPKE_OVERHEAD = 32 + 16  # enc, tag
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{21}[AQgw]$")
_CLAIMS = frozenset(("from", "fdev", "to", "tdev", "mid", "iat", "ct"))
_PLAINTEXT_MEMBERS = frozenset(("body", "subject"))
# An immutable algorithm choice, not state.
_SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)


@dataclass(frozen=True)
class DirectMessage:
    """A verified envelope: who sent it, for which device, and the still sealed text."""

    sender: str
    sender_device: str
    recipient: str
    recipient_device: str
    message_id: str
    issued_at: int
    ciphertext: bytes


@dataclass(frozen=True)
class MessageText:
    """What the recipient device reads once it opens an envelope."""

    body: str
    subject: str


def check_username(value: object, *, what: str) -> str:
    """A username as the envelope carries it: 1-150 characters, no control characters."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= MAX_USERNAME_CHARS
        or any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for char in value)
    ):
        raise MalformedError(f"{what} must be a username (1-{MAX_USERNAME_CHARS} characters)")
    return value


def new_message_id(random: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh message id; every device's copy of one message carries the same id."""
    return b64url_encode(random(MESSAGE_ID_BYTES))


def check_message_id(value: object) -> str:
    if type(value) is not str or not _MESSAGE_ID.fullmatch(value):
        raise MalformedError("a message id is 16 bytes in canonical base64url")
    return value


def binding_info(*, message_id: str, sender: str, sender_device: str, recipient: str,
                 recipient_device: str, issued_at: int) -> bytes:
    """The HPKE ``info`` that ties a ciphertext to its envelope."""
    parts = [value.encode("utf-8") for value in (
        message_id, sender, sender_device, recipient, recipient_device, str(issued_at))]
    return _INFO_LABEL + b"".join(len(p).to_bytes(2, "big") + p for p in parts)


def seal_direct_message(
    device: DeviceKeys,
    *,
    sender: str,
    recipient: str,
    recipient_device: DevicePublicKeys,
    message_id: str,
    body: str,
    subject: str = "",
    issued_at: int,
) -> str:
    """Seal ``body`` to ``recipient_device`` and sign the envelope with ``device``."""
    check_username(sender, what="sender")
    check_username(recipient, what="recipient")
    check_message_id(message_id)
    if not isinstance(body, str) or not isinstance(subject, str):
        raise MalformedError("the body and subject are text")
    if type(issued_at) is not int or issued_at < 0:
        raise MalformedError("issued_at is a non-negative integer")
    _check_unicode(body, subject)
    plaintext = canonical_json({"body": body, "subject": subject})
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise OversizedError(f"a direct message's text is at most {MAX_PLAINTEXT_BYTES} bytes")
    info = binding_info(message_id=message_id, sender=sender, sender_device=device.device_id,
                        recipient=recipient, recipient_device=recipient_device.device_id,
                        issued_at=issued_at)
    try:
        sealed = _SUITE.encrypt(plaintext, recipient_device.kem_key, info=info)
    except ValueError as error:  # e.g. a low-order X25519 point
        raise MalformedError("cannot seal to this device key") from error
    claims = {
        "from": sender,
        "fdev": device.device_id,
        "to": recipient,
        "tdev": recipient_device.device_id,
        "mid": message_id,
        "iat": issued_at,
        "ct": b64url_encode(sealed),
    }
    return device.sign(DocumentKind.DIRECT_MESSAGE, claims)


def direct_message_signer(token: object) -> str:
    """The device id the envelope says signed it (its ``kid``), NOT yet verified: the
    caller looks that device's registered key up and passes it to ``read_direct_message``."""
    return parse_document(token, DocumentKind.DIRECT_MESSAGE).kid


def read_direct_message(
    token: object,
    *,
    sender_device: DevicePublicKeys,
    recipient_device_id: str | None = None,
    now: int,
    leeway: int = DEFAULT_LEEWAY,
) -> DirectMessage:
    """Verify an envelope: signed by ``sender_device`` (its ``kid`` and ``fdev`` name it),
    not dated in the future, and, with ``recipient_device_id``, sealed to that device.

    Who the sender and recipient usernames belong to is the caller's check (the platform
    knows its members' devices; an agent asks the platform).
    """
    document = parse_document(token, DocumentKind.DIRECT_MESSAGE)
    if document.kid != sender_device.device_id:
        raise WrongDeviceError("the message is signed by another device than the one named")
    verify_signature(document, sender_device.signing_key)
    reader = ClaimReader(document.claims, required=_CLAIMS, what="direct message")
    if reader.identifier("fdev") != sender_device.device_id:
        raise WrongDeviceError("the message names another device than its signer")
    recipient_device = reader.identifier("tdev")
    if recipient_device_id is not None and recipient_device != recipient_device_id:
        raise WrongDeviceError("the message is sealed to another device")
    issued_at = reader.integer("iat")
    check_lifetime(issued_at=issued_at, expires_at=None, now=now, leeway=leeway)
    ciphertext = reader.b64url("ct")
    if not _HPKE_OVERHEAD < len(ciphertext) <= MAX_PLAINTEXT_BYTES + _HPKE_OVERHEAD:
        raise MalformedError("the sealed text has an impossible length")
    return DirectMessage(
        sender=check_username(reader.raw("from"), what="direct message claim 'from'"),
        sender_device=sender_device.device_id,
        recipient=check_username(reader.raw("to"), what="direct message claim 'to'"),
        recipient_device=recipient_device,
        message_id=check_message_id(reader.raw("mid")),
        issued_at=issued_at,
        ciphertext=ciphertext,
    )


def open_direct_message(message: DirectMessage, *, device: DeviceKeys) -> MessageText:
    """Decrypt a verified envelope with this device's X25519 key, or ``UnwrapFailedError``."""
    device.require(message.recipient_device)
    info = binding_info(message_id=message.message_id, sender=message.sender,
                        sender_device=message.sender_device, recipient=message.recipient,
                        recipient_device=message.recipient_device,
                        issued_at=message.issued_at)
    try:
        plaintext = _SUITE.decrypt(message.ciphertext, device.kem_private_key, info=info)
    except (InvalidTag, ValueError):
        raise UnwrapFailedError("this message was not sealed to this device") from None
    content = strict_json_object(plaintext, what="direct message text")
    if content.keys() != _PLAINTEXT_MEMBERS or not all(
            isinstance(content[name], str) for name in _PLAINTEXT_MEMBERS):
        raise MalformedError('a direct message\'s text is {"body", "subject"}')
    _check_unicode(content["body"], content["subject"])
    return MessageText(body=content["body"], subject=content["subject"])


def _check_unicode(*texts: str) -> None:
    """Refuse lone surrogates: JSON's ``\\ud800`` escapes carry them, UTF-8 cannot."""
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedError("the text is not valid Unicode") from None

