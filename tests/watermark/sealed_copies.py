"""Sealed works and licensed copies of them, shared by the sealed-delivery tests."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tests.watermark.photographs import photograph
from watermark.sealed import container_info, personal_table, seal_image, unseal

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def pixels(data: bytes) -> NDArray[np.uint8]:
    return np.asarray(Image.open(io.BytesIO(data)), dtype=np.uint8)


def psnr(reference: NDArray[np.uint8], copy: NDArray[np.uint8]) -> float:
    """Worked out here, not with the library's own helper."""
    error = np.mean(np.square(reference.astype(np.float64) - copy.astype(np.float64)))
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))


@cache
def master(name: str) -> bytes:
    return png_bytes(photograph(name))


@cache
def container(name: str, key: bytes = KEY) -> bytes:
    return seal_image(master(name), key)


@cache
def licensed(name: str, payload: int, key: bytes = KEY) -> bytes:
    """The copy the licence with `payload` unseals."""
    sealed = container(name, key)
    return unseal(sealed, personal_table(key, payload, container_info(sealed).table_size))


def payloads(count: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return [int(value) for value in rng.integers(0, 2**63, count, dtype=np.int64)]


def average(copies: list[bytes]) -> bytes:
    stack = np.stack([pixels(copy).astype(np.float64) for copy in copies])
    mean = np.clip(np.rint(stack.mean(axis=0)), 0, 255).astype(np.uint8)
    return png_bytes(Image.fromarray(mean))
