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


def _raw(key: bytes, label: bytes, count: int, *extra: int) -> NDArray[np.uint64]:
    """`count` 64-bit words of a PCG64 stream keyed by HMAC(key, label, extra).

    Only the bit stream is used (numpy keeps it stable across versions, where it may change
    what its distribution methods draw), with integer arithmetic on it: a table made today
    must be made again, bit for bit, whenever its buyer fetches it."""
    message = label + b"".join(value.to_bytes(8, "big") for value in extra)
    seed = int.from_bytes(hmac.new(key, message, hashlib.sha256).digest(), "big")
    return np.asarray(np.random.PCG64(seed).random_raw(count), np.uint64)


def noise_table(key: bytes, size: int) -> NDArray[np.int32]:
    """E: the secret noise every sealed coefficient hides under.

    Each entry is a sum of 12 uniform 16-bit integers, centred and scaled (Irwin-Hall):
    a Gaussian to within 1% in its tails, of standard deviation NOISE_SIGMA, bounded at 6
    standard deviations, and exact integer arithmetic."""
    words = _raw(key, _NOISE, 3 * size, size).reshape(size, 3)
    total = np.zeros(size, dtype=np.int64)
    for word in range(3):
        for quarter in range(4):
            total += ((words[:, word] >> np.uint64(16 * quarter)) & np.uint64(0xFFFF)
                      ).astype(np.int64)
    centred = total - 12 * 32768
    noise = centred * NOISE_SIGMA // 65536  # sigma of the sum is 65536
    return np.clip(noise, -NOISE_CLIP, NOISE_CLIP).astype(np.int32)


def entry_layout(key: bytes, size: int,
                 code_bits: int) -> tuple[NDArray[np.int8], NDArray[np.intp]]:
    """Each table entry's chip (+-1) and the code bit it carries; every bit gets
    size / code_bits entries, scattered by a keyed shuffle (the order of random words)."""
    words = _raw(key, _ENTRIES, size, size, code_bits)
    order = np.argsort(words >> np.uint64(1), kind="stable")
    bits = np.empty(size, dtype=np.intp)
    bits[order] = np.arange(size) % code_bits
    chips = ((words & np.uint64(1)).astype(np.int8) * 2 - 1).astype(np.int8)
    return chips, bits


def biases(key: bytes, code_bits: int, coalition: int) -> NDArray[np.float64]:
    """Tardos's bias p_i of every code bit: p = sin^2(r), r uniform on [t', pi/2 - t'],
    with sin^2(t') = 1 / (300 c), the cutoff of Tardos (2003)."""
    cutoff = np.arcsin(np.sqrt(1.0 / (300.0 * coalition)))
    uniform = (_raw(key, _BIASES, code_bits, code_bits, coalition) >> np.uint64(11)
               ).astype(np.float64) * (1.0 / (1 << 53))
    r = cutoff + uniform * (np.pi / 2 - 2 * cutoff)
    return np.asarray(np.square(np.sin(r)), np.float64)


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
