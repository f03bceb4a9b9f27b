"""The whole sale, end to end in the pure core: package, license, unwrap, decrypt."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from licensing.core import (
    DEFAULT_PIECE_SIZE,
    LicensingError,
    PackagingError,
    UnwrapFailedError,
    WrongDeviceError,
    decrypt_work,
    open_piece,
    package_work,
    read_licence,
    read_manifest,
    read_piece,
    verify_piece,
)
from licensing.core.key_wrap import unwrap_licence_keys
from licensing.core.pieces import TAG_BYTES

from .core_support import NOW, PIECE_SIZE, WORK_ID, Sale, build_sale, counter_random


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("sale"))


def test_a_licensed_device_gets_the_master_back_byte_for_byte(sale: Sale) -> None:
    # The agent knows only the published JWKS, its own device keys and what it was sent.
    manifest = read_manifest(sale.manifest_token, keyring=sale.agent_ring, now=NOW)
    licence = read_licence(
        sale.licence_token, keyring=sale.agent_ring, now=NOW, device_id=sale.bob.device_id
    )
    licence.check_manifest(manifest)
    keys = licence.unwrap_keys(sale.bob)
    assert keys == sale.licence_keys

    pieces = []
    for index in range(manifest.piece_count):
        ciphertext = read_piece(sale.packaged.ciphertext_path, manifest, index)
        verify_piece(manifest, index, ciphertext)
        pieces.append(open_piece(keys.content_key, manifest, index, ciphertext))
    assert b"".join(pieces) == sale.master


def test_the_streaming_decryption_writes_the_master_and_returns_its_hash(sale: Sale) -> None:
    out = io.BytesIO()
    digest = decrypt_work(
        sale.packaged.content_key, sale.manifest, sale.packaged.ciphertext_path, out
    )
    assert out.getvalue() == sale.master
    assert digest == sale.packaged.master_sha256 == hashlib.sha256(sale.master).digest()


def test_the_manifest_describes_an_odd_sized_master_exactly(sale: Sale) -> None:
    manifest = sale.manifest
    assert manifest.master_size == len(sale.master)
    assert manifest.master_size % PIECE_SIZE != 0
    assert manifest.piece_count == -(-len(sale.master) // PIECE_SIZE)
    assert manifest.piece_length(manifest.piece_count - 1) == (
        len(sale.master) % PIECE_SIZE + TAG_BYTES
    )
    assert sale.packaged.ciphertext_path.stat().st_size == manifest.ciphertext_size
    assert manifest.work_id == WORK_ID


def test_only_the_licensed_device_opens_the_wrapped_keys(sale: Sale) -> None:
    with pytest.raises(WrongDeviceError):
        sale.licence.unwrap_keys(sale.carol)
    # Even skipping the device check, Carol's private key cannot open Bob's keys.
    with pytest.raises(UnwrapFailedError):
        unwrap_licence_keys(
            sale.licence.wrapped_keys,
            private_key=sale.carol.kem_private_key,
            info=sale.licence.key_binding_info(),
        )


def test_the_wrapped_keys_do_not_open_under_another_licences_binding(sale: Sale) -> None:
    other = read_licence(sale.issue(licence_id="licence-bob-2"), keyring=sale.ring, now=NOW)
    with pytest.raises(UnwrapFailedError):
        unwrap_licence_keys(
            sale.licence.wrapped_keys,
            private_key=sale.bob.kem_private_key,
            info=other.key_binding_info(),
        )


def test_packaging_a_stream_with_the_same_randomness_gives_the_same_package(
    tmp_path: Path,
) -> None:
    master = bytes(range(256)) * 5000  # 1.28 MB
    (tmp_path / "master").write_bytes(master)
    from_file = package_work(
        tmp_path / "master", tmp_path / "a", work_id="w-1", random=counter_random()
    )
    from_stream = package_work(
        io.BytesIO(master), tmp_path / "b", work_id="w-1", size=len(master), random=counter_random()
    )
    assert from_file.manifest == from_stream.manifest
    assert from_file.content_key == from_stream.content_key
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()
    assert from_file.manifest.piece_size == DEFAULT_PIECE_SIZE


def test_each_packaging_draws_a_fresh_content_key(tmp_path: Path) -> None:
    (tmp_path / "master").write_bytes(b"x" * 100_000)
    first = package_work(tmp_path / "master", tmp_path / "a", work_id="w-1")
    second = package_work(tmp_path / "master", tmp_path / "b", work_id="w-1")
    assert first.content_key != second.content_key
    assert first.manifest.root != second.manifest.root


@pytest.mark.parametrize("piece_size", [0, 1000, 3 << 14, 1 << 13, 1 << 25, True])
def test_it_refuses_a_piece_size_that_is_not_an_allowed_power_of_two(
    tmp_path: Path, piece_size: int
) -> None:
    (tmp_path / "master").write_bytes(b"x" * 100)
    with pytest.raises(LicensingError):
        package_work(tmp_path / "master", tmp_path / "c", work_id="w", piece_size=piece_size)
    assert not (tmp_path / "c").exists()


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def test_it_refuses_an_empty_master_and_writes_nothing(tmp_path: Path, out: Path) -> None:
    (tmp_path / "master").write_bytes(b"")
    with pytest.raises(PackagingError):
        package_work(tmp_path / "master", out / "c", work_id="w")
    assert list(out.iterdir()) == []


def test_a_stream_shorter_than_its_size_leaves_no_half_written_package(out: Path) -> None:
    with pytest.raises(PackagingError):
        package_work(io.BytesIO(b"x" * 100_000), out / "c", work_id="w", size=500_000)
    assert list(out.iterdir()) == []


def test_a_stream_longer_than_its_size_is_refused(out: Path) -> None:
    with pytest.raises(PackagingError):
        package_work(io.BytesIO(b"x" * 5001), out / "c", work_id="w", size=5000)
    assert list(out.iterdir()) == []


def test_a_missing_master_is_a_packaging_error(tmp_path: Path) -> None:
    with pytest.raises(PackagingError):
        package_work(tmp_path / "nope", tmp_path / "c", work_id="w")
