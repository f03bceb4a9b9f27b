"""Sealing one piece: AES-256-GCM with a per-index nonce and binding associated data.

Each work has its own random 256-bit content key, used for exactly one packaging
run, so the nonce can be the piece index: 4 zero bytes then the index as a
64-bit big-endian integer. Never reuse a content key for a second packaging.

The associated data binds the piece to its place in its work:

    b"peermark-piece-v1\\0" || u64 index || u64 piece count || u64 master size
    || u32 piece size || u16 len(work id) || work id (UTF-8)

so a piece moved to another index, another work, or a packaging with another
length fails authentication (``DecryptionFailedError``), and a truncated work
cannot end early: the last piece is bound to the full count and size.

AES-256-GCM was picked over ChaCha20-Poly1305 by measurement on the target
machine (AES-NI): about 8.5 GB/s against 3.3 GB/s on one core, 1 MiB pieces.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .encoding import check_identifier
from .errors import DecryptionFailedError, MalformedError

#: the manifest's ``cipher`` value (the JOSE name of AES-256-GCM)
CIPHER = "A256GCM"
CONTENT_KEY_BYTES = 32
TAG_BYTES = 16
NONCE_BYTES = 12
#: 1 MiB pieces moved about 30% faster than 256 KiB over HTTP here (issue 4)
DEFAULT_PIECE_SIZE = 1 << 20
MIN_PIECE_SIZE = 1 << 14
MAX_PIECE_SIZE = 1 << 24
_AAD_PREFIX = b"peermark-piece-v1\x00"
_AAD_FIELDS = struct.Struct(">QQQIH")


def check_piece_size(piece_size: object) -> int:
    """A power of two between 16 KiB and 16 MiB."""
    if (
        type(piece_size) is not int
        or not MIN_PIECE_SIZE <= piece_size <= MAX_PIECE_SIZE
        or piece_size & (piece_size - 1)
    ):
        raise MalformedError("piece size must be a power of two from 16 KiB to 16 MiB")
    return piece_size


def piece_count_for(master_size: int, piece_size: int) -> int:
    """How many pieces a master of ``master_size`` bytes has (at least one byte each)."""
    return -(-master_size // piece_size)


def piece_nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + index.to_bytes(8, "big")


class PieceCipher:
    """Seals and opens the pieces of one work under its content key."""

    def __init__(
        self, content_key: bytes, *, work_id: str, master_size: int, piece_size: int
    ) -> None:
        if not isinstance(content_key, bytes) or len(content_key) != CONTENT_KEY_BYTES:
            raise MalformedError("a content key is 32 bytes")
        self._aead = AESGCM(content_key)
        self._work = check_identifier(work_id, what="work id").encode("ascii")
        self._master_size = master_size
        self._piece_size = check_piece_size(piece_size)
        self._piece_count = piece_count_for(master_size, piece_size)

    def associated_data(self, index: int) -> bytes:
        return (
            _AAD_PREFIX
            + _AAD_FIELDS.pack(
                index, self._piece_count, self._master_size, self._piece_size, len(self._work)
            )
            + self._work
        )

    def seal_into(self, index: int, plaintext: memoryview, out: memoryview) -> None:
        """Encrypt ``plaintext`` into ``out`` (exactly ``len(plaintext) + 16`` bytes)."""
        self._aead.encrypt_into(piece_nonce(index), plaintext, self.associated_data(index), out)

    def seal(self, index: int, plaintext: bytes) -> bytes:
        return self._aead.encrypt(piece_nonce(index), plaintext, self.associated_data(index))

    def open(self, index: int, ciphertext: bytes | memoryview) -> bytes:
        """Decrypt and authenticate one piece, or raise ``DecryptionFailedError``."""
        if not 0 <= index < self._piece_count:
            raise DecryptionFailedError("piece index outside the work")
        try:
            return self._aead.decrypt(piece_nonce(index), ciphertext, self.associated_data(index))
        except InvalidTag:
            raise DecryptionFailedError(f"piece {index} does not authenticate") from None

    def open_into(self, index: int, ciphertext: bytes | memoryview, out: memoryview) -> None:
        """Decrypt and authenticate one piece into ``out`` (exactly ``len - 16`` bytes).

        For a reused buffer: a fresh ``bytes`` per piece costs a page fault per 4 KiB,
        which is most of decryption's cost on a large work. ``out`` holds nothing
        usable if this raises.
        """
        if not 0 <= index < self._piece_count:
            raise DecryptionFailedError("piece index outside the work")
        try:
            self._aead.decrypt_into(piece_nonce(index), ciphertext, self.associated_data(index),
                                    out)
        except InvalidTag:
            raise DecryptionFailedError(f"piece {index} does not authenticate") from None
