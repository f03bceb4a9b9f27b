"""The Merkle root over a work's ciphertext piece hashes (BitTorrent v2 style).

Leaves are the SHA-256 hashes of the ciphertext pieces, in order. The leaf layer
is padded to the next power of two with all-zero 32-byte hashes, and each parent
is ``SHA-256(left || right)``. A single piece's root is its own hash.

No leaf/node domain separation is needed here (unlike RFC 6962): the leaf count
is fixed by the signed manifest (size and piece size), every leaf is listed in
the manifest, and receivers check each piece against its listed hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .errors import MalformedError

HASH_BYTES = 32
ZERO_HASH = bytes(HASH_BYTES)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the padded binary tree over ``leaves`` (32-byte hashes)."""
    if not leaves:
        raise MalformedError("a Merkle tree needs at least one leaf")
    if any(len(leaf) != HASH_BYTES for leaf in leaves):
        raise MalformedError("Merkle leaves are 32-byte hashes")
    width = 1 << (len(leaves) - 1).bit_length()
    layer = [*leaves, *([ZERO_HASH] * (width - len(leaves)))]
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]
