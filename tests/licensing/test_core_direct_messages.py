"""Direct messages in the licensing core: only the device a message is sealed to opens it,
and a ciphertext moved into another envelope opens nowhere."""

from __future__ import annotations

import base64
import json

import pytest

from licensing.core import (
    DeviceKeys,
    MalformedError,
    UnwrapFailedError,
    WrongDeviceError,
    new_message_id,
    open_direct_message,
    read_direct_message,
    seal_direct_message,
)
from licensing.core.jws import sign_document
from licensing.core.kinds import DocumentKind

NOW = 1_800_000_000


@pytest.fixture(scope="module")
def keys() -> dict[str, DeviceKeys]:
    return {name: DeviceKeys.generate() for name in ("bob", "rita", "carol")}


def _seal(keys: dict[str, DeviceKeys], *, body: str = "안녕하세요, Rita", to: str = "rita",
          mid: str | None = None) -> str:
    return seal_direct_message(keys["bob"], sender="bob", recipient=to,
                               recipient_device=keys[to].public,
                               message_id=mid or new_message_id(), body=body,
                               subject="hello", issued_at=NOW)


def _claims(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def test_the_recipient_device_opens_it_and_reads_korean(keys) -> None:
    token = _seal(keys)
    envelope = read_direct_message(token, sender_device=keys["bob"].public,
                                   recipient_device_id=keys["rita"].device_id, now=NOW)
    assert (envelope.sender, envelope.recipient, envelope.issued_at) == ("bob", "rita", NOW)
    text = open_direct_message(envelope, device=keys["rita"])
    assert (text.body, text.subject) == ("안녕하세요, Rita", "hello")
    # the claims carry no text
    assert "Rita" not in json.dumps(_claims(token), ensure_ascii=False).replace('"rita"', "")


def test_no_other_device_opens_it(keys) -> None:
    envelope = read_direct_message(_seal(keys), sender_device=keys["bob"].public, now=NOW)
    with pytest.raises(WrongDeviceError):
        open_direct_message(envelope, device=keys["carol"])


def test_a_ciphertext_moved_into_another_envelope_does_not_open(keys) -> None:
    original = _claims(_seal(keys))
    # bob re-signs rita's ciphertext under another message id: the HPKE info differs
    moved = {**original, "mid": new_message_id()}
    token = sign_document(DocumentKind.DIRECT_MESSAGE, moved, kid=keys["bob"].device_id,
                          key=keys["bob"]._signing_jwk)
    envelope = read_direct_message(token, sender_device=keys["bob"].public, now=NOW)
    with pytest.raises(UnwrapFailedError):
        open_direct_message(envelope, device=keys["rita"])


def test_a_signer_other_than_the_named_device_is_refused(keys) -> None:
    claims = _claims(_seal(keys))
    token = sign_document(DocumentKind.DIRECT_MESSAGE, claims, kid=keys["carol"].device_id,
                          key=keys["carol"]._signing_jwk)  # fdev still names bob's device
    with pytest.raises(WrongDeviceError):
        read_direct_message(token, sender_device=keys["carol"].public, now=NOW)


@pytest.mark.parametrize(("change", "value"), [
    ("mid", "short"), ("from", ""), ("to", "x" * 151), ("iat", -1), ("ct", "AAAA"),
    ("from", "bob\u202e"), ("extra", 1),
])
def test_bad_claims_are_refused(keys, change, value) -> None:
    claims = {**_claims(_seal(keys)), change: value}
    token = sign_document(DocumentKind.DIRECT_MESSAGE, claims, kid=keys["bob"].device_id,
                          key=keys["bob"]._signing_jwk)
    with pytest.raises(MalformedError):
        read_direct_message(token, sender_device=keys["bob"].public, now=NOW)


def test_bad_text_cannot_be_sealed(keys) -> None:
    with pytest.raises(MalformedError):
        _seal(keys, body="\ud800")  # a lone surrogate is not Unicode text
    with pytest.raises(MalformedError):
        _seal(keys, mid="not-a-message-id")


def test_a_message_id_with_a_trailing_newline_is_refused() -> None:
    """A regular expression's ``$`` also matches before a final newline: ids are matched
    whole, so "<id>\\n" is not a second spelling of "<id>"."""
    from licensing.core.direct_messages import check_message_id
    from licensing.core.errors import MalformedError

    valid = "A" * 21 + "Q"
    assert check_message_id(valid) == valid
    with pytest.raises(MalformedError):
        check_message_id(valid + "\n")
