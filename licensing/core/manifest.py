"""The signed manifest of a packaged work, and checking a piece against it.

A manifest says how a work's ciphertext is laid out and what every piece must
hash to. Claims (typ ``pm-manifest+jwt``, signed by the platform):

    work, size (master bytes), piece_size, pieces (count), cipher,
    hashes (base64url of the concatenated SHA-256 of every ciphertext piece),
    root (hex Merkle root of those hashes), iat, exp

The ciphertext of a work is one file: piece ``i`` starts at
``i * (piece_size + 16)`` and is ``plaintext length + 16`` bytes long (the GCM
tag), so a serving peer or a plain HTTP web seed serves piece ``i`` with one
seek or one Range request. The SHA-256 of the master itself is not in the
manifest: peers holding ciphertext must not be able to confirm a guessed plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from .encoding import ClaimReader, b64url_encode, check_identifier
from .errors import BadPieceError, MalformedError, PieceOutOfRangeError
from .jws import DEFAULT_LEEWAY, check_lifetime
from .keyring import KeyRing
from .kinds import DocumentKind
from .merkle import HASH_BYTES, merkle_root
from .pieces import CIPHER, TAG_BYTES, check_piece_size, piece_count_for

#: most pieces in one manifest (the signed manifest must fit its 8 MiB bound):
#: 128 GiB at the default 1 MiB piece size
MAX_PIECES = 1 << 17
_CONTENT_CLAIMS = frozenset(("work", "size", "piece_size", "pieces", "cipher", "hashes", "root"))
_TIME_CLAIMS = frozenset(("iat", "exp"))


@dataclass(frozen=True)
class Manifest:
    """A work's ciphertext layout and piece hashes; ``root`` is computed, not trusted."""

    work_id: str
    master_size: int
    piece_size: int
    piece_hashes: tuple[bytes, ...] = field(repr=False)
    cipher: str = CIPHER
    root: bytes = field(init=False)

    def __post_init__(self) -> None:
        check_identifier(self.work_id, what="work id")
        check_piece_size(self.piece_size)
        if type(self.master_size) is not int or self.master_size <= 0:
            raise MalformedError("a master has at least one byte")
        count = piece_count_for(self.master_size, self.piece_size)
        if count > MAX_PIECES:
            raise MalformedError(f"more than {MAX_PIECES} pieces; use a larger piece size")
        if len(self.piece_hashes) != count:
            raise MalformedError(f"{len(self.piece_hashes)} hashes for {count} pieces")
        if self.cipher != CIPHER:
            raise MalformedError(f"unsupported cipher; only {CIPHER}")
        object.__setattr__(self, "root", merkle_root(self.piece_hashes))

    @property
    def piece_count(self) -> int:
        return len(self.piece_hashes)

    @property
    def root_hex(self) -> str:
        return self.root.hex()

    @property
    def ciphertext_size(self) -> int:
        return self.master_size + TAG_BYTES * self.piece_count

    def check_index(self, index: object) -> int:
        if type(index) is not int or not 0 <= index < self.piece_count:
            raise PieceOutOfRangeError(f"piece index outside 0..{self.piece_count - 1}")
        return index

    def plaintext_length(self, index: int) -> int:
        index = self.check_index(index)
        return min(self.piece_size, self.master_size - index * self.piece_size)

    def piece_length(self, index: int) -> int:
        """Ciphertext bytes of piece ``index`` (plaintext + 16-byte tag)."""
        return self.plaintext_length(index) + TAG_BYTES

    def piece_offset(self, index: int) -> int:
        """Where piece ``index`` starts in the ciphertext file."""
        return self.check_index(index) * (self.piece_size + TAG_BYTES)

    def to_claims(self, *, issued_at: int, expires_at: int) -> dict[str, Any]:
        return {
            "work": self.work_id,
            "size": self.master_size,
            "piece_size": self.piece_size,
            "pieces": self.piece_count,
            "cipher": self.cipher,
            "hashes": b64url_encode(b"".join(self.piece_hashes)),
            "root": self.root_hex,
            "iat": issued_at,
            "exp": expires_at,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Manifest:
        """Rebuild a manifest from its claims (``iat``/``exp`` optional: storage form)."""
        reader = ClaimReader(
            claims, required=_CONTENT_CLAIMS, optional=_TIME_CLAIMS, what="manifest"
        )
        blob = reader.b64url("hashes")
        if len(blob) % HASH_BYTES:
            raise MalformedError("manifest hashes are not a whole number of SHA-256 hashes")
        hashes = tuple(blob[i : i + HASH_BYTES] for i in range(0, len(blob), HASH_BYTES))
        if reader.integer("pieces") != len(hashes):
            raise MalformedError("manifest piece count does not match its hashes")
        cipher = reader.raw("cipher")
        if cipher != CIPHER:
            raise MalformedError(f"unsupported cipher; only {CIPHER}")
        manifest = cls(
            work_id=reader.identifier("work"),
            master_size=reader.integer("size", minimum=1),
            piece_size=reader.integer("piece_size"),
            piece_hashes=hashes,
        )
        if reader.hex("root", length=HASH_BYTES) != manifest.root:
            raise MalformedError("manifest root does not match its piece hashes")
        return manifest


def sign_manifest(manifest: Manifest, *, keyring: KeyRing, issued_at: int, expires_at: int) -> str:
    """Sign the manifest with the platform's active key.

    Manifests expire like every token so that old keys can be retired; the platform
    re-signs a work's (unchanged) manifest when it rotates keys.
    """
    if expires_at <= issued_at:
        raise MalformedError("a manifest must expire after it is issued")
    return keyring.sign(
        DocumentKind.MANIFEST, manifest.to_claims(issued_at=issued_at, expires_at=expires_at)
    )


def read_manifest(
    token: object, *, keyring: KeyRing, now: int, leeway: int = DEFAULT_LEEWAY
) -> Manifest:
    """Verify a signed manifest (signature, typ, times, internal consistency)."""
    _, claims = keyring.verify(token, DocumentKind.MANIFEST)
    reader = ClaimReader(claims, required=_CONTENT_CLAIMS | _TIME_CLAIMS, what="manifest")
    check_lifetime(
        issued_at=reader.integer("iat"), expires_at=reader.integer("exp"), now=now, leeway=leeway
    )
    return Manifest.from_claims(claims)


def verify_piece(manifest: Manifest, index: int, data: bytes | memoryview) -> None:
    """Check a ciphertext piece's index, length and SHA-256 before using or storing it."""
    expected_length = manifest.piece_length(index)
    if len(data) != expected_length:
        raise BadPieceError(f"piece {index} is {len(data)} bytes, expected {expected_length}")
    if not hmac.compare_digest(hashlib.sha256(data).digest(), manifest.piece_hashes[index]):
        raise BadPieceError(f"piece {index} does not match its hash")
