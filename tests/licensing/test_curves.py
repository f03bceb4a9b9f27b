"""Device public keys that parse but cannot be used are refused in licensing.core itself,
so the platform and the agent refuse them alike.

The bad keys are libsodium's blocklists (small-order points of both curves) and the
non-canonical encodings RFC 8032 rules out; none is computed by the code under test.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licensing.core.curves import BadCurveKeyError, check_ed25519_public, check_x25519_public
from licensing.core.device import DeviceKeys, DevicePublicKeys, InvalidDeviceKeyError
from tests.support.bad_keys import BAD_ED25519, LOW_ORDER_X25519

#: the order-8 point (libsodium's blocklist) and an RFC 8032 test vector's public key
ORDER_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")
RFC8032_TEST_1 = bytes.fromhex(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
)


@pytest.mark.parametrize("kem", LOW_ORDER_X25519)
def test_low_order_x25519_keys_are_refused(kem: str) -> None:
    with pytest.raises(BadCurveKeyError, match="small order"):
        check_x25519_public(bytes.fromhex(kem))


@pytest.mark.parametrize("signing", BAD_ED25519)
def test_unusable_ed25519_keys_are_refused(signing: str) -> None:
    with pytest.raises(BadCurveKeyError):
        check_ed25519_public(bytes.fromhex(signing))


def test_the_reasons_are_told_apart() -> None:
    with pytest.raises(BadCurveKeyError, match="identity"):
        check_ed25519_public(bytes.fromhex("01" + "00" * 31))
    with pytest.raises(BadCurveKeyError, match="small order"):
        check_ed25519_public(ORDER_8)
    with pytest.raises(BadCurveKeyError, match="y >= p"):
        check_ed25519_public(bytes.fromhex("ff" * 31 + "7f"))
    with pytest.raises(BadCurveKeyError, match="negative zero"):
        check_ed25519_public(bytes.fromhex("01" + "00" * 30 + "80"))
    with pytest.raises(BadCurveKeyError, match="not a point"):
        check_ed25519_public(bytes.fromhex("02" + "00" * 31))  # y = 2 is not on the curve


def _rfc8032_add_encoded(first: bytes, second: bytes) -> bytes:
    """The sum of two encoded points, by RFC 8032 section 6's reference arithmetic
    (affine, recover-x as in the RFC), kept apart from the code under test."""
    p = 2**255 - 19
    d = -121665 * pow(121666, p - 2, p) % p

    def recover_x(y: int, sign: int) -> int:
        x2 = (y * y - 1) * pow(d * y * y + 1, p - 2, p)
        x = pow(x2, (p + 3) // 8, p)
        if (x * x - x2) % p:
            x = x * pow(2, (p - 1) // 4, p) % p
        return p - x if x & 1 != sign else x

    def decode(raw: bytes) -> tuple[int, int]:
        number = int.from_bytes(raw, "little")
        y = number & ((1 << 255) - 1)
        return recover_x(y, number >> 255), y

    (x1, y1), (x2, y2) = decode(first), decode(second)
    shared = d * x1 * x2 * y1 * y2 % p
    x3 = (x1 * y2 + x2 * y1) * pow(1 + shared, p - 2, p) % p
    y3 = (y1 * y2 + x1 * x2) * pow(1 - shared, p - 2, p) % p
    return (y3 | (x3 & 1) << 255).to_bytes(32, "little")


def test_a_point_with_a_torsion_part_is_refused() -> None:
    mixed = _rfc8032_add_encoded(RFC8032_TEST_1, ORDER_8)
    assert mixed not in (RFC8032_TEST_1, ORDER_8)
    with pytest.raises(BadCurveKeyError, match="torsion"):
        check_ed25519_public(mixed)


def test_real_keys_pass() -> None:
    check_ed25519_public(RFC8032_TEST_1)
    for _ in range(5):
        DeviceKeys.generate()  # builds and checks its own public half


def test_the_device_names_the_bad_key() -> None:
    good = DeviceKeys.generate().public
    with pytest.raises(InvalidDeviceKeyError) as raised:
        DevicePublicKeys(signing=good.signing, kem=bytes(32))
    assert raised.value.key == "kem"
    with pytest.raises(InvalidDeviceKeyError) as raised:
        DevicePublicKeys(signing=ORDER_8, kem=good.kem)
    assert raised.value.key == "signing"
    fresh = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert DevicePublicKeys(signing=fresh, kem=good.kem).signing == fresh
