"""Device identity: two key pairs, an id that commits to both, an owner-only key file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from licensing.core import (
    DeviceKeys,
    DevicePublicKeys,
    DocumentKind,
    InsecureKeyFileError,
    KeyFileError,
    KeyStateError,
    MalformedError,
    WrongDeviceError,
)
from licensing.core.device import device_id_for


def test_device_keys_survive_a_save_and_load(tmp_path: Path) -> None:
    keys = DeviceKeys.generate()
    path = tmp_path / "device.json"
    keys.save(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    again = DeviceKeys.load(path)
    assert again.public == keys.public
    assert again.device_id == keys.device_id


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700])
def test_it_refuses_to_load_a_key_file_others_can_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "device.json"
    DeviceKeys.generate().save(path)
    path.chmod(mode)
    if mode & 0o077:
        with pytest.raises(InsecureKeyFileError):
            DeviceKeys.load(path)
    else:
        DeviceKeys.load(path)


def test_it_refuses_to_overwrite_a_device_identity(tmp_path: Path) -> None:
    folder = tmp_path / "agent"
    folder.mkdir()
    path = folder / "device.json"
    first = DeviceKeys.generate()
    first.save(path)
    with pytest.raises(KeyFileError):
        DeviceKeys.generate().save(path)
    assert DeviceKeys.load(path).device_id == first.device_id
    DeviceKeys.generate().save(path, overwrite=True)
    assert DeviceKeys.load(path).device_id != first.device_id
    assert sorted(p.name for p in folder.iterdir()) == ["device.json"]


def test_it_does_not_follow_a_symlink_to_a_key_file(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    DeviceKeys.generate().save(real)
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(KeyFileError):
        DeviceKeys.load(link)


@pytest.mark.parametrize(
    "content",
    [b"", b"{}", b"not json", b'{"format":"peermark-device-keys","version":2,"sig":"","kem":""}',
     b"x" * 5000],
)  # fmt: skip
def test_a_corrupt_key_file_is_a_licensing_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "device.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(MalformedError):
        DeviceKeys.load(path)


def test_a_missing_key_file_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        DeviceKeys.load(tmp_path / "nope.json")


def test_the_device_id_commits_to_both_public_keys() -> None:
    a, b = DeviceKeys.generate(), DeviceKeys.generate()
    assert a.device_id != b.device_id
    mixed = DevicePublicKeys(signing=a.public.signing, kem=b.public.kem)
    assert mixed.device_id not in {a.device_id, b.device_id}
    assert a.device_id == device_id_for(a.public.signing, a.public.kem)
    assert len(a.device_id) == 43


def test_the_public_halves_export_as_raw_base64url_and_as_jwks() -> None:
    keys = DeviceKeys.generate()
    raw = keys.public.to_b64url()
    assert DevicePublicKeys.from_b64url(signing=raw["sig"], kem=raw["kem"]) == keys.public
    jwks = keys.public.to_jwks()
    assert [k["crv"] for k in jwks["keys"]] == ["Ed25519", "X25519"]
    assert all("d" not in k for k in jwks["keys"])
    assert DevicePublicKeys.from_cnf(keys.public.to_cnf()) == keys.public


def test_a_cnf_whose_device_id_does_not_match_its_keys_is_malformed() -> None:
    keys, other = DeviceKeys.generate(), DeviceKeys.generate()
    cnf = {**keys.public.to_cnf(), "dev": other.device_id}
    with pytest.raises(MalformedError):
        DevicePublicKeys.from_cnf(cnf)


@pytest.mark.parametrize("signing", [b"", b"x" * 31, "A" * 32])
def test_public_keys_must_be_32_bytes(signing: bytes) -> None:
    with pytest.raises(MalformedError):
        DevicePublicKeys(signing=signing, kem=os.urandom(32))


def test_a_device_signs_only_device_documents() -> None:
    with pytest.raises(KeyStateError):
        DeviceKeys.generate().sign(DocumentKind.LICENCE, {})


def test_require_refuses_another_devices_id() -> None:
    a, b = DeviceKeys.generate(), DeviceKeys.generate()
    a.require(a.device_id)
    with pytest.raises(WrongDeviceError):
        a.require(b.device_id)


def test_a_repr_never_shows_private_keys() -> None:
    assert repr(DeviceKeys.generate()).startswith("DeviceKeys(device_id=")
