"""Keyed, invisible, robust watermarking of images with a 64-bit payload.

A pure library (numpy and Pillow): the buyer's agent marks each delivered copy with the
payload its licence names (`embed_bytes`, or `embed` on a PIL image), and the platform's
tracer reads a suspect copy with the work's key, informed by the master (`extract`).
docs/WATERMARK.md explains the method and its limits.

The names below are loaded on first use (PEP 562): the agent imports the marking rule
(`watermark.rule`) for every delivery, and only an image that is marked needs numpy and
Pillow, which cost a noticeable part of a command's start-up.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from watermark.errors import (
    CorruptImageError,
    EmbedCheckError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidKeyError,
    InvalidPayloadError,
    UnsupportedImageError,
    WatermarkError,
)
from watermark.formats import MARKABLE_FORMATS

if TYPE_CHECKING:
    from watermark.codec import embed_bytes, extract_bytes, open_image
    from watermark.embed import embed
    from watermark.extract import extract
    from watermark.params import DEFAULT as DEFAULT_PARAMS
    from watermark.params import Params
    from watermark.payload import PAYLOAD_BITS
    from watermark.register import Alignment
    from watermark.result import ExtractResult

#: public name -> (module, attribute), imported on first use
_LAZY = {
    "embed_bytes": ("watermark.codec", "embed_bytes"),
    "extract_bytes": ("watermark.codec", "extract_bytes"),
    "open_image": ("watermark.codec", "open_image"),
    "embed": ("watermark.embed", "embed"),
    "ExtractResult": ("watermark.result", "ExtractResult"),
    "extract": ("watermark.extract", "extract"),
    "DEFAULT_PARAMS": ("watermark.params", "DEFAULT"),
    "Params": ("watermark.params", "Params"),
    "PAYLOAD_BITS": ("watermark.payload", "PAYLOAD_BITS"),
    "Alignment": ("watermark.register", "Alignment"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'watermark' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(types.ModuleType):
    """The package, minding two names that are both a submodule and a function.

    The import system binds every submodule it loads on its package, so loading
    ``watermark.embed`` (the module) would replace ``watermark.embed`` (the function)
    that callers use; here the function is kept. The modules stay reachable as
    ``from watermark.embed import ...``, through ``sys.modules``.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "DEFAULT_PARAMS",
    "MARKABLE_FORMATS",
    "PAYLOAD_BITS",
    "Alignment",
    "CorruptImageError",
    "EmbedCheckError",
    "ExtractResult",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "InvalidKeyError",
    "InvalidPayloadError",
    "Params",
    "UnsupportedImageError",
    "WatermarkError",
    "embed",
    "embed_bytes",
    "extract",
    "extract_bytes",
    "open_image",
]
