"""The image formats the library marks: a constant the marking rule needs without
loading numpy and Pillow (the agent decides whether to mark before it decodes)."""

from __future__ import annotations

from typing import Final

MARKABLE_FORMATS: Final = ("PNG", "JPEG", "WEBP")
