"""Shared builders for the licensing core tests (pure: no Django, no database).

The people are the project's personas: Rita's work is on sale, Bob and Carol buy
it on their own devices, and a serving peer sends pieces. Times are fixed Unix
seconds; nothing reads the wall clock.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from licensing.core import (
    DeviceKeys,
    KeyRing,
    KeyState,
    Licence,
    LicenceKeys,
    Manifest,
    PackagedWork,
    PlatformKey,
    RevocationList,
    issue_licence,
    package_work,
    read_licence,
    read_revocation_list,
    sign_manifest,
    sign_revocation_list,
)

NOW = 1_900_000_000
DAY = 86_400
PIECE_SIZE = 1 << 18  # 256 KiB: several pieces from a small master
SERVING_PEER = "peer-serving-1"
WORK_ID = "0b1d2c3e-4f50-4a6b-9c7d-8e9fa0b1c2d3"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: dict[str, Any], claims: dict[str, Any] | bytes, key: Ed25519PrivateKey) -> str:
    """Hand-build a compact JWS with any header, signed by ``key`` (attacks only)."""
    payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = b64(json.dumps(header).encode()) + "." + b64(payload)
    return signing_input + "." + b64(key.sign(signing_input.encode("ascii")))


def decode_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def private_key_of(key: PlatformKey) -> Ed25519PrivateKey:
    private = key.jwk.private_key
    assert isinstance(private, Ed25519PrivateKey)
    return private


def counter_random(seed: int = 0) -> Callable[[int], bytes]:
    """A deterministic stand-in for ``os.urandom`` (tests only)."""
    state = {"n": seed}

    def random(size: int) -> bytes:
        state["n"] += 1
        return (state["n"].to_bytes(8, "big") * (size // 8 + 1))[:size]

    return random


@dataclass
class Sale:
    """One work packaged, one licence issued to Bob's device, and the platform around it."""

    signing_key: PlatformKey
    ring: KeyRing
    agent_ring: KeyRing
    bob: DeviceKeys
    carol: DeviceKeys
    bob_signing_key: Ed25519PrivateKey
    carol_signing_key: Ed25519PrivateKey
    master: bytes
    packaged: PackagedWork
    manifest_token: str
    licence_keys: LicenceKeys
    licence_token: str
    licence: Licence
    revocations: RevocationList

    @property
    def manifest(self) -> Manifest:
        return self.packaged.manifest

    def issue(self, **changes: Any) -> str:
        """Another licence like Bob's, with some fields changed."""
        return _issue(self.ring, self.bob, self.manifest, self.licence_keys, **changes)

    def revocation_list(self, **changes: Any) -> str:
        return _revocation_list(self.ring, **changes)


def _issue(
    ring: KeyRing, bob: DeviceKeys, manifest: Manifest, keys: LicenceKeys, **changes: Any
) -> str:
    fields: dict[str, Any] = {
        "keyring": ring,
        "licence_id": "licence-bob-1",
        "buyer": "bob",
        "device": bob.public,
        "manifest": manifest,
        "watermark_payload": 0xFEED_FACE_CAFE_BEEF,
        "uses": ["view", "download"],
        "issued_at": NOW - 60,
        "expires_at": NOW + 30 * DAY,
        "byte_allowance": 2 * manifest.ciphertext_size,
        "keys": keys,
    }
    fields.update(changes)
    return issue_licence(**fields)


def _revocation_list(ring: KeyRing, **changes: Any) -> str:
    fields: dict[str, Any] = {
        "keyring": ring,
        "version": 1,
        "issued_at": NOW - 60,
        "next_update": NOW + DAY,
        "licences": [],
        "devices": [],
    }
    fields.update(changes)
    return sign_revocation_list(**fields)


def make_master(size: int) -> bytes:
    return os.urandom(size)


def build_sale(folder: Path, *, master_size: int = 3 * (1 << 20) + 12_345) -> Sale:
    signing_key = PlatformKey.generate(state=KeyState.ACTIVE)
    ring = KeyRing([signing_key])
    agent_ring = KeyRing.from_jwks(json.dumps(ring.to_jwks()))
    master = make_master(master_size)
    source = folder / "master.bin"
    source.write_bytes(master)
    packaged = package_work(
        source, folder / "work.ciphertext", work_id=WORK_ID, piece_size=PIECE_SIZE
    )
    manifest_token = sign_manifest(
        packaged.manifest, keyring=ring, issued_at=NOW - DAY, expires_at=NOW + 365 * DAY
    )
    bob_signing_key, carol_signing_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    bob = DeviceKeys(signing_key=bob_signing_key, kem_key=X25519PrivateKey.generate())
    carol = DeviceKeys(signing_key=carol_signing_key, kem_key=X25519PrivateKey.generate())
    licence_keys = LicenceKeys(content_key=packaged.content_key, watermark_key=os.urandom(32))
    licence_token = _issue(ring, bob, packaged.manifest, licence_keys)
    return Sale(
        signing_key=signing_key,
        ring=ring,
        agent_ring=agent_ring,
        bob=bob,
        carol=carol,
        bob_signing_key=bob_signing_key,
        carol_signing_key=carol_signing_key,
        master=master,
        packaged=packaged,
        manifest_token=manifest_token,
        licence_keys=licence_keys,
        licence_token=licence_token,
        licence=read_licence(licence_token, keyring=agent_ring, now=NOW),
        revocations=read_revocation_list(_revocation_list(ring), keyring=agent_ring, now=NOW),
    )
