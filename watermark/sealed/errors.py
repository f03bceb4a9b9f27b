"""What sealed delivery raises on input it will not use."""

from __future__ import annotations

from watermark.errors import WatermarkError


class SealedFormatError(WatermarkError, ValueError):
    """A sealed container or personal table that is not well formed, or not for each other.

    The agent gets both through checked channels (the manifest's piece hashes, the
    licence's table hash), so this means a defect or an attack, never a routine case: no
    file is written from them.
    """
