"""Refusing device public keys that parse but cannot be used safely.

A 32-byte string is accepted by the curve libraries as a public key whatever it holds;
what it holds is checked later, when the key is used, and by then a sale may depend on
it. Two things go wrong with a hostile or broken device key:

* X25519: a point of small order (0, 1, the two points of order 8, and their
  non-canonical encodings p-1, p, p+1 ...) makes every shared secret all zero, so no
  content key can be wrapped to the device (RFC 7748, section 6.1: check for the
  all-zero output). The check here is that very exchange, with a fixed scalar: every
  multiple of the small-order subgroup's elements is the identity.
* Ed25519: an encoding that is not canonical (y >= p, or x = 0 with its sign bit set),
  that decodes to no point, or whose point is not of prime order (the identity, the
  seven other torsion points, or any point with a torsion component) cannot sign a
  receipt that everyone verifies alike (RFC 8032, section 5.1.3; "Taming the many
  EdDSAs", 2020). The check decodes the point and verifies [L]P = O and P != O.

The arithmetic is textbook extended twisted Edwards coordinates over Python integers:
slow next to a C library (a few milliseconds per key), so results are cached per key;
a device registers once and buys many times.
"""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

P = 2**255 - 19
#: the prime order of the Ed25519 base point's subgroup
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

#: a fixed scalar for the X25519 check (clamping makes it a multiple of the cofactor)
_PROBE = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))

_Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z
_IDENTITY: _Point = (0, 1, 1, 0)


class BadCurveKeyError(ValueError):
    """The key is a well-formed string of 32 bytes but not a usable public key."""


@functools.lru_cache(maxsize=4096)
def check_x25519_public(raw: bytes) -> None:
    """Refuse an X25519 public key that gives an all-zero shared secret (small order)."""
    try:
        shared = _PROBE.exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError:  # the library refuses an all-zero result itself
        raise BadCurveKeyError("the X25519 key is of small order") from None
    if shared == bytes(32):
        raise BadCurveKeyError("the X25519 key is of small order")


@functools.lru_cache(maxsize=4096)
def check_ed25519_public(raw: bytes) -> None:
    """Refuse an Ed25519 key that is not the canonical encoding of a prime-order point."""
    if len(raw) != 32:
        raise BadCurveKeyError("an Ed25519 public key is 32 bytes")
    point = _decode(raw)
    if _is_identity(point):
        raise BadCurveKeyError("the Ed25519 key is the identity point")
    if _is_identity(_multiply(point, 8)):
        raise BadCurveKeyError("the Ed25519 key is of small order")
    if not _is_identity(_multiply(point, L)):
        raise BadCurveKeyError("the Ed25519 key is not of prime order (it has a torsion part)")


def _decode(raw: bytes) -> _Point:
    """RFC 8032 section 5.1.3, with the non-canonical encodings refused."""
    number = int.from_bytes(raw, "little")
    sign = number >> 255
    y = number & ((1 << 255) - 1)
    if y >= P:
        raise BadCurveKeyError("the Ed25519 key is not canonically encoded (y >= p)")
    u = (y * y - 1) % P
    v = (D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    if (v * x * x - u) % P != 0:
        x = (x * SQRT_M1) % P
        if (v * x * x - u) % P != 0:
            raise BadCurveKeyError("the Ed25519 key is not a point of the curve")
    if x == 0 and sign:
        raise BadCurveKeyError("the Ed25519 key is not canonically encoded (negative zero)")
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, (x * y) % P)


def _is_identity(point: _Point) -> bool:
    x, y, z, _ = point
    return x % P == 0 and (y - z) % P == 0


def _add(a: _Point, b: _Point) -> _Point:
    """Addition in extended coordinates (RFC 8032, section 5.1.4)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    first = (y1 - x1) * (y2 - x2) % P
    second = (y1 + x1) * (y2 + x2) % P
    third = 2 * t1 * t2 * D % P
    fourth = 2 * z1 * z2 % P
    e, f, g, h = second - first, fourth - third, fourth + third, second + first
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(point: _Point, scalar: int) -> _Point:
    result = _IDENTITY
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result
