"""From a 64-bit payload to keyed coded symbols, and back with a keyed check.

The information word is the payload followed by a 24-bit keyed check (a truncated
HMAC-SHA256 of the payload under the work's key), XORed with a keyed pad so that the same
payload under two keys gives unrelated codewords. The check is what makes the detector say
"no mark" instead of guessing: noise, an unmarked image or a mark under another key decodes
to some word whose check matches with probability 2**-24 (about 6e-8) per decoding attempt.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from watermark import ecc
from watermark.errors import InvalidKeyError, InvalidPayloadError

PAYLOAD_BITS: Final = 64
CHECK_BITS: Final = 24
INFO_BITS: Final = PAYLOAD_BITS + CHECK_BITS
CODED_BITS: Final = ecc.coded_length(INFO_BITS)
MIN_KEY_BYTES: Final = 16

_CHECK_LABEL: Final = b"peermark.watermark.v1.check"
_PAD_LABEL: Final = b"peermark.watermark.v1.pad"


def validate_key(key: object) -> bytes:
    """Return `key` as bytes, or raise `InvalidKeyError`: a short key is a guessable key."""
    if not isinstance(key, bytes | bytearray | memoryview):
        raise InvalidKeyError(f"key must be bytes, not {type(key).__name__}")
    raw = bytes(key)
    if len(raw) < MIN_KEY_BYTES:
        raise InvalidKeyError(f"key must be at least {MIN_KEY_BYTES} bytes, got {len(raw)}")
    return raw


def validate_payload(payload: object) -> int:
    """Return `payload` if it is an int in [0, 2**64), else raise `InvalidPayloadError`."""
    if isinstance(payload, bool) or not isinstance(payload, int | np.integer):
        raise InvalidPayloadError(f"payload must be an int, not {type(payload).__name__}")
    value = int(payload)
    if not 0 <= value < 1 << PAYLOAD_BITS:
        raise InvalidPayloadError(f"payload must be in [0, 2**{PAYLOAD_BITS}), got {value}")
    return value


def _bits(data: bytes, n: int) -> NDArray[np.uint8]:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n]


def _check(key: bytes, payload: int) -> bytes:
    message = _CHECK_LABEL + payload.to_bytes(PAYLOAD_BITS // 8, "big")
    return hmac.new(key, message, hashlib.sha256).digest()[: CHECK_BITS // 8]


def _pad(key: bytes) -> NDArray[np.uint8]:
    return _bits(hmac.new(key, _PAD_LABEL, hashlib.sha256).digest(), INFO_BITS)


def codeword(key: bytes, payload: int) -> NDArray[np.float64]:
    """The +1/-1 coded symbols that carry `payload` under `key`."""
    word = payload.to_bytes(PAYLOAD_BITS // 8, "big") + _check(key, payload)
    return ecc.encode(_bits(word, INFO_BITS) ^ _pad(key))


@dataclass(frozen=True)
class Decoded:
    """What the decoder made of a vector of soft symbols."""

    payload: int | None
    check_ok: bool
    bit_errors: int
    score: float


def decode(key: bytes, soft: NDArray[np.float64]) -> Decoded:
    """Viterbi-decode `soft`, verify the keyed check, and say how well the codeword fits.

    `bit_errors` counts coded symbols whose sign disagreed with the decoded codeword (errors
    the code corrected); `score` is the normalised correlation between the soft values and
    that codeword, 1.0 for a perfect read and about 0.56 for pure noise (the Viterbi
    decoder always finds some codeword that fits noise that well; the keyed check decides).
    """
    soft = np.nan_to_num(np.asarray(soft, dtype=np.float64))
    info = ecc.decode(soft, INFO_BITS) ^ _pad(key)
    recoded = ecc.encode(info ^ _pad(key))
    bit_errors = int(np.count_nonzero(np.sign(soft) != recoded))
    norm = float(np.linalg.norm(soft)) * float(np.sqrt(recoded.size))
    score = float(soft @ recoded) / norm if norm > 0 else 0.0
    word = np.packbits(info).tobytes()
    payload = int.from_bytes(word[: PAYLOAD_BITS // 8], "big")
    check_ok = hmac.compare_digest(word[PAYLOAD_BITS // 8 :], _check(key, payload))
    return Decoded(payload if check_ok else None, check_ok, bit_errors, score)
