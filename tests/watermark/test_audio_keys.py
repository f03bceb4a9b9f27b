"""Detect, don't guess: audio read under a key that did not mark it says "no mark".

Issue 17 allows at most one false positive in 10,000 reads. The expected value here is
zero, by this reasoning rather than by anything the code reports about itself: a blind
read decodes at most three candidate placements of the sync pattern (docs/WATERMARK.md,
"three tries at 2^-24"), and the reader's answer is "marked" only if a decoded word's
24-bit keyed check, a truncated HMAC-SHA256 under the reading key, matches it. Under a key
that did not mark the audio that check is a fresh 24-bit value, so a read is falsely
marked with probability at most 3 * 2**-24 (1.8e-7). Over the 375 reads and 10,000
decodes of the default run, the chance that even one says "marked" is below 0.1%, and
over the long version's 4,000 reads below 0.1% too; the keys come from fixed seeds, so
each run is deterministic either way.

The cost of a blind read is its sync search (0.06 to 0.25 s for an 8-second clip on one
core here, depending on the load), so the default run reads through the public `extract`
with 375 keys on three clips (unmarked music, unmarked speech, music marked under another
key), and checks the keyed check itself, the part that decides, over 5,000 more keys for
each of two inputs: noise, and a clean codeword under another key (what a marked copy
presents to a reader with the wrong key). The long version, marked `slow` and skipped
unless asked for, reads 2,000 random keys through `extract` on both music clips (4,000
reads, about 5 minutes here):

    PEERMARK_AUDIO_KEYS=2000 .venv/bin/python -m pytest tests/watermark/test_audio_keys.py -m slow
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.watermark.audio_clips import RATE, music, speech_like
from watermark.audio import embed, extract
from watermark.payload import CODED_BITS, codeword, decode

KEY_A = bytes(range(32, 48))
PAYLOAD = 0x0123_4567_89AB_CDEF
READS_PER_CLIP = 150
CHECK_KEYS = 5_000
LONG_KEYS = int(os.environ.get("PEERMARK_AUDIO_KEYS", "0"))


def _keys(count: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    keys = [rng.bytes(16) for _ in range(count)]
    assert KEY_A not in keys
    return keys


@pytest.fixture(scope="module")
def unmarked() -> np.ndarray:
    """8 s of music: the reader needs 7.5 s, and a short clip keeps each read cheap."""
    return music(8.0, seed=31)


@pytest.fixture(scope="module")
def marked_under_a() -> np.ndarray:
    copy = embed(music(8.0, seed=32), RATE, KEY_A, PAYLOAD)
    # the clip really carries a mark, or the reads below under other keys would prove nothing
    assert extract(copy, RATE, KEY_A).payload == PAYLOAD
    return copy


def _named(samples: np.ndarray, keys: list[bytes]) -> list[int]:
    """The indices of the keys under which a blind read said "marked"."""
    named = []
    for index, key in enumerate(keys):
        result = extract(samples, RATE, key)
        if result.found or result.payload is not None:
            named.append(index)
    return named


def test_an_unmarked_clip_reads_as_no_mark_under_every_key(unmarked) -> None:
    assert _named(unmarked, _keys(READS_PER_CLIP, seed=1)) == []


def test_unmarked_speech_reads_as_no_mark_under_every_key() -> None:
    voice = speech_like(8.0, seed=33)
    assert _named(voice, _keys(READS_PER_CLIP // 2, seed=2)) == []


def test_a_copy_marked_under_one_key_reads_as_no_mark_under_every_other(marked_under_a) -> None:
    assert _named(marked_under_a, _keys(READS_PER_CLIP, seed=3)) == []


def test_the_keyed_check_rejects_thousands_of_other_keys() -> None:
    rng = np.random.default_rng(4)
    noise = rng.normal(size=CODED_BITS)
    other_mark = codeword(KEY_A, PAYLOAD)  # a perfect read of key A's mark
    for key in _keys(CHECK_KEYS, seed=5):
        for soft in (noise, other_mark):
            decoded = decode(key, soft)
            assert not decoded.check_ok
            assert decoded.payload is None


@pytest.mark.slow
@pytest.mark.skipif(LONG_KEYS == 0, reason="the long version: set PEERMARK_AUDIO_KEYS=2000 "
                                           "(see this module's docstring)")
def test_thousands_of_other_keys_read_no_mark_through_extract(unmarked, marked_under_a) -> None:
    keys = _keys(LONG_KEYS, seed=6)
    assert _named(unmarked, keys) == []
    assert _named(marked_under_a, keys) == []
