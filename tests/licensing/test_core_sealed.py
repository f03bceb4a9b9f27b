"""Sealed licences: the ``seal`` claim, and the personal table encrypted for one licence.

A sealed licence wraps its table key where a marked one wraps the work's watermark key,
names its encrypted table by hash and size, and that table opens only with its own key,
for its own licence, byte for byte as the platform made it.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from licensing.core import (
    BadTableError,
    LicenceKeys,
    MalformedError,
    OversizedError,
    SealClaim,
    issue_licence,
    read_licence,
)
from licensing.core.sealed_tables import (
    MAX_TABLE_BYTES,
    open_table,
    seal_table,
    table_key_for,
    table_sha256,
)

from .core_support import NOW, Sale, build_sale, forge, private_key_of

WATERMARK_KEY = bytes(range(32))
LICENCE_ID = "licence-bob-sealed"
TABLE = os.urandom(2 * 4096 + 16)


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("sealed"), master_size=70_001)


def sealed_licence(sale: Sale, **changes: Any) -> tuple[str, bytes, bytes]:
    """A sealed licence as the platform issues one: token, table key, encrypted table."""
    table_key = table_key_for(WATERMARK_KEY, LICENCE_ID)
    blob = seal_table(table_key, LICENCE_ID, TABLE)
    keys = LicenceKeys(content_key=sale.licence_keys.content_key, watermark_key=table_key)
    fields: dict[str, Any] = {
        "keyring": sale.ring, "licence_id": LICENCE_ID, "buyer": "bob",
        "device": sale.bob.public, "manifest": sale.manifest,
        "watermark_payload": 0xFEED_FACE_CAFE_BEEF, "uses": ["view", "download"],
        "issued_at": NOW - 60, "expires_at": NOW + 86_400,
        "byte_allowance": 2 * sale.manifest.ciphertext_size, "keys": keys,
        "seal": SealClaim(table_sha256=table_sha256(blob), size=len(blob)),
    }
    fields.update(changes)
    return issue_licence(**fields), table_key, blob


# --- the claim -------------------------------------------------------------------------------


def test_a_sealed_licence_round_trips_its_seal_claim(sale: Sale) -> None:
    token, _key, blob = sealed_licence(sale)
    licence = read_licence(token, keyring=sale.agent_ring, now=NOW)
    assert licence.sealed
    assert licence.seal == SealClaim(table_sha256=hashlib.sha256(blob).digest(), size=len(blob))


def test_a_marked_licence_has_no_seal(sale: Sale) -> None:
    assert sale.licence.seal is None
    assert not sale.licence.sealed


def test_a_sealed_licence_wraps_the_table_key_never_the_works_watermark_key(sale: Sale) -> None:
    token, table_key, _blob = sealed_licence(sale)
    keys = read_licence(token, keyring=sale.agent_ring, now=NOW).unwrap_keys(sale.bob)
    assert keys.watermark_key == table_key
    assert keys.watermark_key != WATERMARK_KEY
    assert keys.content_key == sale.licence_keys.content_key


def _claims_with_seal(sale: Sale, seal: object) -> str:
    """Bob's licence re-signed by the platform's own key with ``seal`` as given."""
    from .core_support import decode_part

    claims = decode_part(sealed_licence(sale)[0], 1)
    header = decode_part(sale.licence_token, 0)
    claims["seal"] = seal
    return forge(header, claims, private_key_of(sale.signing_key))


@pytest.mark.parametrize("seal", [
    None,
    "abc",
    [],
    {},
    {"table": "00" * 32},
    {"size": 100},
    {"table": "00" * 32, "size": 100, "extra": 1},
    {"table": "AB" * 32, "size": 100},
    {"table": "00" * 31, "size": 100},
    {"table": "zz" * 32, "size": 100},
    {"table": 12, "size": 100},
    {"table": "00" * 32, "size": "100"},
    {"table": "00" * 32, "size": True},
    {"table": "00" * 32, "size": -1},
    {"table": "00" * 32, "size": 16},
    {"table": "00" * 32, "size": MAX_TABLE_BYTES + 1},
    {"table": "00" * 32, "size": 1.5},
])
def test_a_malformed_seal_claim_is_refused(sale: Sale, seal: object) -> None:
    with pytest.raises(MalformedError):
        read_licence(_claims_with_seal(sale, seal), keyring=sale.agent_ring, now=NOW)


def test_issuing_refuses_a_seal_that_is_not_a_seal_claim(sale: Sale) -> None:
    with pytest.raises(MalformedError):
        sealed_licence(sale, seal={"table": "00" * 32, "size": 100})


# --- the table -------------------------------------------------------------------------------


def test_the_table_opens_with_its_key_for_its_licence() -> None:
    key = table_key_for(WATERMARK_KEY, LICENCE_ID)
    blob = seal_table(key, LICENCE_ID, TABLE)
    assert open_table(key, LICENCE_ID, blob, hashlib.sha256(blob).digest()) == TABLE


def test_the_encrypted_table_is_deterministic_so_nothing_per_licence_is_stored() -> None:
    key = table_key_for(WATERMARK_KEY, LICENCE_ID)
    assert seal_table(key, LICENCE_ID, TABLE) == seal_table(key, LICENCE_ID, TABLE)
    assert len(seal_table(key, LICENCE_ID, TABLE)) == len(TABLE) + 16


def test_each_licence_has_its_own_table_key() -> None:
    assert table_key_for(WATERMARK_KEY, "licence-a") != table_key_for(WATERMARK_KEY, "licence-b")
    assert table_key_for(WATERMARK_KEY, "licence-a") != table_key_for(
        bytes(32), "licence-a")


def test_a_tampered_table_is_refused_by_its_hash() -> None:
    key = table_key_for(WATERMARK_KEY, LICENCE_ID)
    blob = seal_table(key, LICENCE_ID, TABLE)
    tampered = bytearray(blob)
    tampered[100] ^= 1
    with pytest.raises(BadTableError, match="SHA-256"):
        open_table(key, LICENCE_ID, bytes(tampered), hashlib.sha256(blob).digest())


def test_a_tampered_table_with_a_matching_hash_is_refused_by_the_cipher() -> None:
    key = table_key_for(WATERMARK_KEY, LICENCE_ID)
    tampered = bytearray(seal_table(key, LICENCE_ID, TABLE))
    tampered[100] ^= 1
    with pytest.raises(BadTableError, match="does not open"):
        open_table(key, LICENCE_ID, bytes(tampered), hashlib.sha256(tampered).digest())


def test_another_licences_table_does_not_open_under_this_licence() -> None:
    other_key = table_key_for(WATERMARK_KEY, "licence-carol")
    theirs = seal_table(other_key, "licence-carol", TABLE)
    # With their key but under our licence id (the associated data differs) ...
    with pytest.raises(BadTableError):
        open_table(other_key, LICENCE_ID, theirs, hashlib.sha256(theirs).digest())
    # ... and with our key.
    with pytest.raises(BadTableError):
        open_table(table_key_for(WATERMARK_KEY, LICENCE_ID), LICENCE_ID, theirs,
                   hashlib.sha256(theirs).digest())


def test_a_wrong_key_is_refused() -> None:
    blob = seal_table(table_key_for(WATERMARK_KEY, LICENCE_ID), LICENCE_ID, TABLE)
    with pytest.raises(BadTableError):
        open_table(os.urandom(32), LICENCE_ID, blob, hashlib.sha256(blob).digest())


@pytest.mark.parametrize("blob", [b"", b"x" * 16])
def test_a_table_too_short_to_hold_a_tag_is_refused(blob: bytes) -> None:
    with pytest.raises(BadTableError):
        open_table(bytes(32), LICENCE_ID, blob, hashlib.sha256(blob).digest())


def test_an_oversized_table_is_refused_before_it_is_hashed() -> None:
    blob = bytes(MAX_TABLE_BYTES + 1)
    with pytest.raises(OversizedError):
        open_table(bytes(32), LICENCE_ID, blob, bytes(32))


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33), "0" * 32])
def test_keys_of_the_wrong_size_are_malformed(key: Any) -> None:
    with pytest.raises(MalformedError):
        table_key_for(key, LICENCE_ID)
    with pytest.raises(MalformedError):
        seal_table(key, LICENCE_ID, TABLE)


@pytest.mark.parametrize("licence_id", ["", "has space", "x" * 300])
def test_a_bad_licence_id_is_malformed(licence_id: str) -> None:
    with pytest.raises(MalformedError):
        table_key_for(WATERMARK_KEY, licence_id)
