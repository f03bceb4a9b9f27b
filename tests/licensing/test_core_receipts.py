"""Receipts: signed by the licensed device, checked by the platform before settling."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from licensing.core import (
    BadSignatureError,
    MalformedError,
    MismatchError,
    NotYetValidError,
    UnmarkedReason,
    WrongDeviceError,
    read_receipt,
    sign_receipt,
)

from .core_support import NOW, Sale, build_sale, decode_part, forge

OUTPUT = hashlib.sha256(b"the marked copy").digest()


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("receipts"), master_size=70_000)


def receipt(sale: Sale, **changes: Any) -> str:
    fields: dict[str, Any] = {
        "licence_id": "licence-bob-1",
        "output_sha256": OUTPUT,
        "served": {"peer-a": 40_000, "peer-b": 30_064},
        "marked": True,
        "issued_at": NOW,
    }
    fields.update(changes)
    device = fields.pop("device", sale.bob)
    return sign_receipt(device, **fields)


def test_a_receipt_round_trips(sale: Sale) -> None:
    read = read_receipt(receipt(sale), licence=sale.licence, now=NOW)
    assert read.output_sha256 == OUTPUT
    assert read.served == {"peer-a": 40_000, "peer-b": 30_064}
    assert read.marked
    assert read.unmarked_reason is None
    assert read.device_id == sale.bob.device_id
    assert len(read.receipt_id) == 22


def test_an_unmarked_copy_says_why(sale: Sale) -> None:
    token = receipt(sale, marked=False, unmarked_reason=UnmarkedReason.UNSUPPORTED_FORMAT)
    read = read_receipt(token, licence=sale.licence, now=NOW)
    assert read.unmarked_reason is UnmarkedReason.UNSUPPORTED_FORMAT
    with pytest.raises(MalformedError):
        receipt(sale, marked=False)
    with pytest.raises(MalformedError):
        receipt(sale, marked=True, unmarked_reason=UnmarkedReason.TOO_SMALL)


@pytest.mark.parametrize(
    "changes",
    [
        {"marked": False},
        {"marked": False, "unmarked_reason": "lazy"},
        {"unmarked_reason": "too-small"},
        {"sha256": "00"},
        {"served": {"peer-a": -1}},
        {"served": {"": 1}},
        {"served": [1]},
        {"jti": "x"},
    ],
)
def test_a_receipt_with_bad_claims_is_malformed(sale: Sale, changes: dict[str, Any]) -> None:
    genuine = receipt(sale)
    claims = {**decode_part(genuine, 1), **changes}
    token = forge(decode_part(genuine, 0), claims, sale.bob_signing_key)
    with pytest.raises(MalformedError):
        read_receipt(token, licence=sale.licence, now=NOW)


def test_a_receipt_from_another_device_is_refused(sale: Sale) -> None:
    with pytest.raises(WrongDeviceError):
        read_receipt(receipt(sale, device=sale.carol), licence=sale.licence, now=NOW)
    genuine = receipt(sale)
    forged = forge(decode_part(genuine, 0), decode_part(genuine, 1), sale.carol_signing_key)
    with pytest.raises(BadSignatureError):
        read_receipt(forged, licence=sale.licence, now=NOW)


def test_a_receipt_for_another_licence_is_refused(sale: Sale) -> None:
    with pytest.raises(MismatchError):
        read_receipt(receipt(sale, licence_id="licence-bob-2"), licence=sale.licence, now=NOW)


def test_a_receipt_from_the_future_or_before_its_licence_is_refused(sale: Sale) -> None:
    with pytest.raises(NotYetValidError):
        read_receipt(receipt(sale, issued_at=NOW + 3600), licence=sale.licence, now=NOW)
    with pytest.raises(MismatchError):
        read_receipt(
            receipt(sale, issued_at=sale.licence.issued_at - 3600), licence=sale.licence, now=NOW
        )
