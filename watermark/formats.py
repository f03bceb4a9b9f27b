"""The formats the library marks: constants the marking rule needs without loading numpy,
Pillow, PyAV or the document libraries (the agent decides whether to mark before it decodes)."""

from __future__ import annotations

from typing import Final

MARKABLE_FORMATS: Final = ("PNG", "JPEG", "WEBP")
MARKABLE_AUDIO_FORMATS: Final = ("WAV", "FLAC", "OGG", "MP3")
MARKABLE_VIDEO_FORMATS: Final = ("MP4", "WEBM")
MARKABLE_DOCUMENT_FORMATS: Final = ("PDF", "EPUB")
