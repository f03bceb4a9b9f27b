"""Encrypted pieces cannot be swapped, reordered, truncated or read without the key."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
from pathlib import Path

import pytest

from licensing.core import (
    BadPieceError,
    DecryptionFailedError,
    DocumentKind,
    MalformedError,
    Manifest,
    PieceOutOfRangeError,
    UnwrapFailedError,
    decrypt_work,
    open_piece,
    read_manifest,
    read_piece,
    sign_manifest,
    unwrap_at_rest,
    verify_piece,
    wrap_at_rest,
)
from licensing.core.merkle import ZERO_HASH, merkle_root
from licensing.core.packaging import cipher_for

from .core_support import DAY, NOW, Sale, build_sale


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("pieces"), master_size=5 * (1 << 18) + 999)


def pieces_of(sale: Sale) -> list[bytes]:
    return [
        read_piece(sale.packaged.ciphertext_path, sale.manifest, i)
        for i in range(sale.manifest.piece_count)
    ]


def with_hashes(manifest: Manifest, hashes: list[bytes]) -> Manifest:
    """A manifest an attacker rewrote (it would need the platform key to sign it)."""
    return dataclasses.replace(manifest, piece_hashes=tuple(hashes))


def test_a_piece_served_at_another_index_fails_its_hash(sale: Sale) -> None:
    pieces = pieces_of(sale)
    with pytest.raises(BadPieceError):
        verify_piece(sale.manifest, 1, pieces[2])
    with pytest.raises(BadPieceError):
        open_piece(sale.packaged.content_key, sale.manifest, 2, pieces[1])


def test_swapped_pieces_in_a_ciphertext_file_stop_the_decryption(
    sale: Sale, tmp_path: Path
) -> None:
    pieces = pieces_of(sale)
    pieces[1], pieces[2] = pieces[2], pieces[1]
    swapped = tmp_path / "swapped"
    swapped.write_bytes(b"".join(pieces))
    out = io.BytesIO()
    with pytest.raises(BadPieceError):
        decrypt_work(sale.packaged.content_key, sale.manifest, swapped, out)
    # Only the pieces before the bad one were written.
    assert out.getvalue() == sale.master[: sale.manifest.piece_size]


def test_reordered_pieces_fail_authentication_even_under_a_rewritten_manifest(
    sale: Sale,
) -> None:
    # Defence in depth: the associated data binds each piece to its index, so even a
    # manifest rewritten to list the pieces in another order cannot make them decrypt.
    pieces = pieces_of(sale)
    hashes = list(sale.manifest.piece_hashes)
    hashes[0], hashes[1] = hashes[1], hashes[0]
    forged = with_hashes(sale.manifest, hashes)
    verify_piece(forged, 0, pieces[1])  # the hash check is fooled ...
    with pytest.raises(DecryptionFailedError):  # ... the AEAD is not
        open_piece(sale.packaged.content_key, forged, 0, pieces[1])


def test_a_piece_of_another_work_does_not_decrypt_even_with_the_same_key(sale: Sale) -> None:
    other = dataclasses.replace(sale.manifest, work_id="another-work")
    piece = pieces_of(sale)[0]
    with pytest.raises(DecryptionFailedError):
        cipher_for(sale.packaged.content_key, other).open(0, piece)


def test_the_last_piece_is_bound_to_the_full_length_of_the_work(sale: Sale) -> None:
    # A "truncated" work that claims to end one piece early cannot reuse a piece as its end.
    count = sale.manifest.piece_count
    pieces = pieces_of(sale)
    shorter = Manifest(
        work_id=sale.manifest.work_id,
        master_size=(count - 1) * sale.manifest.piece_size,
        piece_size=sale.manifest.piece_size,
        piece_hashes=sale.manifest.piece_hashes[: count - 1],
    )
    with pytest.raises(DecryptionFailedError):
        open_piece(sale.packaged.content_key, shorter, count - 2, pieces[count - 2])


def test_a_truncated_piece_is_refused_before_decryption(sale: Sale) -> None:
    piece = pieces_of(sale)[0]
    for cut in (piece[:-1], piece[:16], b""):
        with pytest.raises(BadPieceError):
            verify_piece(sale.manifest, 0, cut)


def test_a_truncated_ciphertext_file_is_refused(sale: Sale, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated"
    shutil.copyfile(sale.packaged.ciphertext_path, truncated)
    with truncated.open("r+b") as handle:
        handle.truncate(sale.manifest.ciphertext_size - 10)
    last = sale.manifest.piece_count - 1
    with pytest.raises(BadPieceError):
        read_piece(truncated, sale.manifest, last)
    with pytest.raises(BadPieceError):
        decrypt_work(sale.packaged.content_key, sale.manifest, truncated, io.BytesIO())


def test_a_flipped_bit_is_caught_by_the_hash_and_by_the_tag(sale: Sale) -> None:
    piece = bytearray(pieces_of(sale)[3])
    piece[100] ^= 1
    with pytest.raises(BadPieceError):
        verify_piece(sale.manifest, 3, bytes(piece))
    with pytest.raises(DecryptionFailedError):
        cipher_for(sale.packaged.content_key, sale.manifest).open(3, bytes(piece))


def test_the_wrong_content_key_does_not_decrypt(sale: Sale) -> None:
    piece = pieces_of(sale)[0]
    with pytest.raises(DecryptionFailedError):
        open_piece(bytes(32), sale.manifest, 0, piece)


@pytest.mark.parametrize("index", [-1, 6, 7, 10**9, True, "0", 1.0])
def test_it_refuses_a_piece_index_outside_the_manifest(sale: Sale, index: object) -> None:
    assert sale.manifest.piece_count == 6
    with pytest.raises(PieceOutOfRangeError):
        verify_piece(sale.manifest, index, b"x")  # type: ignore[arg-type]


def test_the_manifest_layout_puts_piece_i_at_a_fixed_stride(sale: Sale) -> None:
    data = sale.packaged.ciphertext_path.read_bytes()
    for index in range(sale.manifest.piece_count):
        start = sale.manifest.piece_offset(index)
        piece = data[start : start + sale.manifest.piece_length(index)]
        assert hashlib.sha256(piece).digest() == sale.manifest.piece_hashes[index]


def test_the_signed_manifest_round_trips(sale: Sale) -> None:
    assert read_manifest(sale.manifest_token, keyring=sale.agent_ring, now=NOW) == sale.manifest


def test_a_manifest_whose_root_does_not_match_its_hashes_is_refused(sale: Sale) -> None:
    claims = sale.manifest.to_claims(issued_at=NOW, expires_at=NOW + DAY)
    claims["root"] = "00" * 32
    token = sale.ring.sign(DocumentKind.MANIFEST, claims)
    with pytest.raises(MalformedError):
        read_manifest(token, keyring=sale.ring, now=NOW)


def test_a_manifest_must_expire_after_it_is_issued(sale: Sale) -> None:
    with pytest.raises(MalformedError):
        sign_manifest(sale.manifest, keyring=sale.ring, issued_at=NOW, expires_at=NOW)


# --- the Merkle root -----------------------------------------------------------------


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_the_merkle_root_of_one_piece_is_its_hash() -> None:
    assert merkle_root([h(b"a")]) == h(b"a")


def test_the_merkle_tree_pads_to_a_power_of_two_with_zero_hashes() -> None:
    a, b, c = h(b"a"), h(b"b"), h(b"c")
    assert merkle_root([a, b, c]) == h(h(a + b) + h(c + ZERO_HASH))
    assert merkle_root([a, b]) == h(a + b)
    five = [h(bytes([i])) for i in range(5)]
    left = h(h(five[0] + five[1]) + h(five[2] + five[3]))
    right = h(h(five[4] + ZERO_HASH) + h(ZERO_HASH + ZERO_HASH))
    assert merkle_root(five) == h(left + right)


def test_the_merkle_root_changes_when_pieces_are_reordered() -> None:
    a, b = h(b"a"), h(b"b")
    assert merkle_root([a, b]) != merkle_root([b, a])


# --- secrets at rest -----------------------------------------------------------------


def test_a_secret_wrapped_at_rest_unwraps_only_with_its_key_and_record() -> None:
    kek, other = bytes(range(32)), bytes(32)
    wrapped = wrap_at_rest(kek, b"content key bytes", b"content-key:work-1")
    assert unwrap_at_rest(kek, wrapped, b"content-key:work-1") == b"content key bytes"
    with pytest.raises(UnwrapFailedError):
        unwrap_at_rest(other, wrapped, b"content-key:work-1")
    with pytest.raises(UnwrapFailedError):
        unwrap_at_rest(kek, wrapped, b"content-key:work-2")
    with pytest.raises(UnwrapFailedError):
        unwrap_at_rest(kek, wrapped[:-1] + bytes([wrapped[-1] ^ 1]), b"content-key:work-1")
    with pytest.raises(UnwrapFailedError):
        unwrap_at_rest(kek, b"\x01short", b"content-key:work-1")


def test_wrapping_at_rest_uses_a_fresh_nonce_each_time() -> None:
    kek = bytes(range(32))
    assert wrap_at_rest(kek, b"s", b"") != wrap_at_rest(kek, b"s", b"")


def test_a_key_encryption_key_is_32_bytes() -> None:
    with pytest.raises(MalformedError):
        wrap_at_rest(b"short", b"s", b"")
