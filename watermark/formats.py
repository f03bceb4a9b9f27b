"""The formats the library marks: constants the marking rule needs without loading numpy,
Pillow or the audio codecs (the agent decides whether to mark before it decodes)."""

from __future__ import annotations

from typing import Final

MARKABLE_FORMATS: Final = ("PNG", "JPEG", "WEBP")
MARKABLE_AUDIO_FORMATS: Final = ("WAV", "FLAC", "OGG", "MP3")
