"""Everything the work's watermark key decides, derived under separate labels.

The noise table, the entries' chips and code bits, and the code's biases are the
platform's secrets: whoever holds them can strip a mark or forge another buyer's, which
is why a sealed licence never carries the watermark key (it carries a key that opens one
personal table). The lookup seed is derived from the key too, but one-way, and is public:
every licence holder needs it to apply a table.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark.sealed.params import NOISE_CLIP, NOISE_SIGMA

_NOISE: Final = b"peermark.sealed.v1.noise"
_ENTRIES: Final = b"peermark.sealed.v1.entries"
_BIASES: Final = b"peermark.sealed.v1.biases"
_CODEWORD: Final = b"peermark.sealed.v1.codeword"
_LOOKUPS: Final = b"peermark.sealed.v1.lookups"


def _generator(key: bytes, label: bytes, *extra: int) -> np.random.Generator:
    message = label + b"".join(value.to_bytes(8, "big") for value in extra)
    seed = int.from_bytes(hmac.new(key, message, hashlib.sha256).digest(), "big")
    return np.random.Generator(np.random.PCG64(seed))


def noise_table(key: bytes, size: int) -> NDArray[np.int32]:
    """E: the secret Gaussian noise every sealed coefficient hides under."""
    noise = _generator(key, _NOISE, size).normal(0.0, NOISE_SIGMA, size)
    return np.clip(np.rint(noise), -NOISE_CLIP, NOISE_CLIP).astype(np.int32)


def entry_layout(key: bytes, size: int,
                 code_bits: int) -> tuple[NDArray[np.int8], NDArray[np.intp]]:
    """Each table entry's chip (+-1) and the code bit it carries; every bit gets
    size / code_bits entries, scattered by a keyed permutation."""
    rng = _generator(key, _ENTRIES, size, code_bits)
    bits = (rng.permutation(size) % code_bits).astype(np.intp)
    chips = (rng.integers(0, 2, size=size, dtype=np.int8) * 2 - 1).astype(np.int8)
    return chips, bits


def biases(key: bytes, code_bits: int, coalition: int) -> NDArray[np.float64]:
    """Tardos's bias p_i of every code bit: p = sin^2(r), r uniform on [t', pi/2 - t'],
    with sin^2(t') = 1 / (300 c), the cutoff of Tardos (2003)."""
    cutoff = np.arcsin(np.sqrt(1.0 / (300.0 * coalition)))
    r = _generator(key, _BIASES, code_bits, coalition).uniform(cutoff, np.pi / 2 - cutoff,
                                                                 code_bits)
    return np.square(np.sin(r))


def codeword_seeds(key: bytes, payloads: NDArray[np.uint64] | list[int]) -> NDArray[np.uint64]:
    """One 64-bit seed per licence payload, from which its codeword is drawn."""
    seeds = [
        int.from_bytes(hmac.new(key, _CODEWORD + int(p).to_bytes(8, "big"),
                                hashlib.sha256).digest()[:8], "big")
        for p in payloads
    ]
    return np.array(seeds, dtype=np.uint64)


def lookup_seed(key: bytes) -> bytes:
    """The public seed of the lookups (which entries each cell adds up)."""
    return hmac.new(key, _LOOKUPS, hashlib.sha256).digest()[:16]
