"""Delivering a downloaded work: decrypt, mark, write atomically, and sign the receipt.

``deliver`` opens every piece with the licence's content key (AES-256-GCM
authenticates each one, so a piece damaged on disk since it was verified is refused),
applies the marking rule (``watermark.rule``: the licence's payload embedded when the
work is an image the library marks, else the plain master and why), and writes the
copy through a temporary file in the destination's folder (fsync, rename): never a
partial or corrupt file under the final name. It
returns the copy's SHA-256, whether it was marked and, if not, why, in the closed
vocabulary the receipt carries (``UnmarkedReason``).

Marking must be deterministic for a given (master, key, payload, library version):
the platform's audit recomputes a sample of copies with the same rule and compares
their hashes with the receipts (docs/THREAT_MODEL.md). Nothing here adds randomness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.files import atomic_file
from licensing.core import (
    DeviceKeys,
    Licence,
    LicenceKeys,
    LicensingError,
    Manifest,
    UnmarkedReason,
    sign_receipt,
)
from licensing.core.packaging import cipher_for
from watermark import InvalidKeyError, InvalidPayloadError
from watermark import rule as marking_rule

from .store import StoreError, WorkStore


class DeliveryError(Exception):
    """The copy could not be written; nothing was left under the final name."""


@dataclass(frozen=True)
class Delivery:
    """What was written: where, its SHA-256 and size, and whether it carries the mark."""

    path: Path
    sha256: bytes
    size: int
    marked: bool
    unmarked_reason: UnmarkedReason | None
    #: a sentence for people (logs, the CLI): why the copy is not marked
    detail: str = ""

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()


def deliver(
    *,
    store: WorkStore,
    manifest: Manifest,
    licence: Licence,
    keys: LicenceKeys,
    destination: Path,
    content_type: str,
) -> Delivery:
    """Decrypt the held work, mark it if it is a markable image, write it atomically.

    Raises ``DeliveryError`` if the work is incomplete, does not belong to the licence,
    a piece does not authenticate, or the copy cannot be written.
    """
    destination = Path(destination)
    if store.manifest.root != manifest.root or store.work_id != manifest.work_id:
        raise DeliveryError("the store holds another packaging of this work")
    try:
        licence.check_manifest(manifest)
    except LicensingError as error:
        raise DeliveryError(f"the licence is for another work: {error}") from error
    if not store.complete:
        missing = manifest.piece_count - store.held_count
        raise DeliveryError(f"the work is incomplete: {missing} piece(s) missing")
    try:
        if marking_rule.marks(content_type, manifest.master_size):
            return _deliver_image(
                store, manifest, licence, keys, destination, content_type=content_type
            )
        reason, detail = marking_rule.skipped_reason(content_type)
        return _deliver_stream(
            store, manifest, keys, destination, reason=UnmarkedReason(reason), detail=detail
        )
    except LicensingError as error:
        raise DeliveryError(f"a piece does not decrypt: {error}") from error
    except StoreError as error:
        raise DeliveryError(f"cannot read the held work: {error}") from error
    except OSError as error:
        raise DeliveryError(f"cannot write {destination}: {error}") from error


def _plaintext_pieces(store: WorkStore, manifest: Manifest, keys: LicenceKeys) -> Iterator[bytes]:
    cipher = cipher_for(keys.content_key, manifest)
    for index in range(manifest.piece_count):
        yield cipher.open(index, store.read_piece(index))


def _deliver_image(
    store: WorkStore,
    manifest: Manifest,
    licence: Licence,
    keys: LicenceKeys,
    destination: Path,
    *,
    content_type: str,
) -> Delivery:
    plaintext = b"".join(_plaintext_pieces(store, manifest, keys))
    try:
        copy = marking_rule.licensed_copy(
            plaintext, content_type, keys.watermark_key, licence.watermark_payload
        )
    except (InvalidKeyError, InvalidPayloadError) as error:
        raise DeliveryError(f"the licence's watermark key or payload is unusable: {error}"
                            ) from error
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(destination, suffix=".partial") as out:
        out.write(copy.data)
    return Delivery(
        path=destination,
        sha256=hashlib.sha256(copy.data).digest(),
        size=len(copy.data),
        marked=copy.marked,
        unmarked_reason=None if copy.reason is None else UnmarkedReason(copy.reason),
        detail=copy.detail,
    )


def _deliver_stream(
    store: WorkStore,
    manifest: Manifest,
    keys: LicenceKeys,
    destination: Path,
    *,
    reason: UnmarkedReason,
    detail: str,
) -> Delivery:
    digest = hashlib.sha256()
    size = 0
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(destination, suffix=".partial") as out:
        for plaintext in _plaintext_pieces(store, manifest, keys):
            digest.update(plaintext)
            out.write(plaintext)
            size += len(plaintext)
    return Delivery(
        path=destination,
        sha256=digest.digest(),
        size=size,
        marked=False,
        unmarked_reason=reason,
        detail=detail,
    )


def receipt_for(
    delivery: Delivery,
    *,
    device: DeviceKeys,
    licence: Licence,
    served_bytes: Mapping[str, int],
    now: int,
) -> str:
    """The signed receipt for a delivered copy (output hash, mark, bytes per serving peer).

    ``served_bytes`` is the ciphertext each serving peer delivered under this licence,
    over every run of the download (``DownloadResult.bytes_by_peer`` summed across a
    resume); web seeds are not in it.
    """
    return sign_receipt(
        device,
        licence_id=licence.licence_id,
        output_sha256=delivery.sha256,
        served=dict(served_bytes),
        marked=delivery.marked,
        unmarked_reason=delivery.unmarked_reason,
        issued_at=now,
    )
