"""Keyed, inaudible, robust marking of audio with the same 64-bit payload as images.

`embed(samples, sample_rate, key, payload)` returns the marked samples; `extract(samples,
sample_rate, key, reference=None)` reads them blind, or informed by the master, and
answers with the image mark's `ExtractResult`. The payload, its keyed check and the error
correction are the image mark's own (`watermark.payload`, `watermark.ecc`); the method
is in docs/WATERMARK.md.
"""

from watermark.audio.embed import embed
from watermark.audio.extract import extract

__all__ = ["embed", "extract"]
