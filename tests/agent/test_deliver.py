"""Delivery: decrypt, mark the licence's payload into images, write atomically, sign a receipt."""

from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import watermark
from agent.deliver import Delivery, DeliveryError, deliver, receipt_for
from agent.store import PieceStore, WorkStore
from licensing.core import (
    Licence,
    LicenceKeys,
    Manifest,
    UnmarkedReason,
    issue_licence,
    package_work,
    read_licence,
    read_receipt,
    sign_manifest,
)
from tests.agent.support import photo_png
from tests.licensing.core_support import DAY, NOW, Sale

PAYLOAD = 0xFEED_FACE_CAFE_BEEF


@dataclass
class Bought:
    """One work as the buyer holds it after a download: store, manifest, licence, keys."""

    work: WorkStore
    manifest: Manifest
    licence: Licence
    keys: LicenceKeys
    master: bytes


def bought(sale: Sale, folder: Path, master: bytes, *, piece_size: int = 1 << 16) -> Bought:
    """Package ``master`` as a work, license it to Bob, and hold every piece of it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "master").write_bytes(master)
    packaged = package_work(
        folder / "master", folder / "ciphertext", work_id="work-image-1", piece_size=piece_size
    )
    token = sign_manifest(
        packaged.manifest, keyring=sale.ring, issued_at=NOW - DAY, expires_at=NOW + DAY
    )
    keys = LicenceKeys(content_key=packaged.content_key, watermark_key=os.urandom(32))
    licence_token = issue_licence(
        keyring=sale.ring,
        licence_id="licence-bob-image",
        buyer="bob",
        device=sale.bob.public,
        manifest=packaged.manifest,
        watermark_payload=PAYLOAD,
        uses=["view", "download"],
        issued_at=NOW - 60,
        expires_at=NOW + DAY,
        byte_allowance=2 * packaged.manifest.ciphertext_size,
        keys=keys,
    )
    licence = read_licence(
        licence_token, keyring=sale.agent_ring, now=NOW, device_id=sale.bob.device_id
    )
    work = PieceStore(folder / "store").add_work(token, keyring=sale.agent_ring, now=NOW)
    assert work.import_ciphertext(packaged.ciphertext_path).bad == ()
    return Bought(work, packaged.manifest, licence, licence.unwrap_keys(sale.bob), master)


def deliver_to(held: Bought, destination: Path, content_type: str) -> Delivery:
    return deliver(
        store=held.work,
        manifest=held.manifest,
        licence=held.licence,
        keys=held.keys,
        destination=destination,
        content_type=content_type,
    )


def test_an_image_is_written_with_the_licence_payload_marked_in(
    sale: Sale, tmp_path: Path
) -> None:
    held = bought(sale, tmp_path / "work", photo_png())
    destination = tmp_path / "library" / "harbour.png"

    delivery = deliver_to(held, destination, "image/png")

    output = destination.read_bytes()
    assert delivery.marked
    assert delivery.unmarked_reason is None
    assert delivery.sha256 == hashlib.sha256(output).digest()
    assert delivery.size == len(output)
    assert output != held.master
    assert watermark.extract_bytes(output, held.keys.watermark_key).payload == PAYLOAD
    assert sorted(p.name for p in destination.parent.iterdir()) == ["harbour.png"]


def test_marking_is_deterministic_so_the_platform_can_audit_the_hash(
    sale: Sale, tmp_path: Path
) -> None:
    held = bought(sale, tmp_path / "work", photo_png())

    first = deliver_to(held, tmp_path / "a.png", "image/png")
    second = deliver_to(held, tmp_path / "b.png", "image/png")

    assert first.sha256 == second.sha256


def test_a_media_type_it_cannot_mark_is_delivered_unmarked_with_the_reason(
    sale: Sale, tmp_path: Path
) -> None:
    master = os.urandom(300_000)
    held = bought(sale, tmp_path / "work", master)
    destination = tmp_path / "out" / "talk.zip"

    delivery = deliver_to(held, destination, "application/zip")

    assert destination.read_bytes() == master
    assert delivery.sha256 == hashlib.sha256(master).digest()
    assert (delivery.marked, delivery.unmarked_reason) == (
        False, UnmarkedReason.UNSUPPORTED_FORMAT,
    )


def test_an_image_too_small_to_carry_the_mark_is_recorded_as_too_small(
    sale: Sale, tmp_path: Path
) -> None:
    tiny = photo_png(64, 48)
    held = bought(sale, tmp_path / "work", tiny, piece_size=1 << 14)

    delivery = deliver_to(held, tmp_path / "icon.png", "image/png")

    assert (delivery.marked, delivery.unmarked_reason) == (False, UnmarkedReason.TOO_SMALL)
    assert (tmp_path / "icon.png").read_bytes() == tiny


def test_an_image_the_library_cannot_read_is_recorded_as_unsupported(
    sale: Sale, tmp_path: Path
) -> None:
    not_really_a_png = b"\x89PNG\r\n\x1a\n" + os.urandom(40_000)
    held = bought(sale, tmp_path / "work", not_really_a_png)

    delivery = deliver_to(held, tmp_path / "broken.png", "image/png")

    assert (delivery.marked, delivery.unmarked_reason) == (
        False, UnmarkedReason.UNSUPPORTED_FORMAT,
    )


def _checkerboard_png() -> bytes:
    """Pure black and white squares: no room for a mark, so embed's own check refuses it."""
    y, x = np.mgrid[0:320, 0:384]
    image = Image.fromarray(((x // 16 + y // 16) % 2 * 255).astype(np.uint8), mode="L")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_an_image_the_mark_does_not_survive_in_is_delivered_plain_as_embed_failed(
    sale: Sale, tmp_path: Path
) -> None:
    master = _checkerboard_png()
    held = bought(sale, tmp_path / "work", master)

    delivery = deliver_to(held, tmp_path / "board.png", "image/png")

    assert (delivery.marked, delivery.unmarked_reason) == (False, UnmarkedReason.EMBED_FAILED)
    assert "does not read back" in delivery.detail
    assert (tmp_path / "board.png").read_bytes() == master
    assert delivery.sha256 == hashlib.sha256(master).digest()


@pytest.mark.parametrize(
    "defect",
    [
        pytest.param(np.nan, id="NaN amplitudes, as the variance bug made"),
        pytest.param(400.0, id="finite amplitudes far too strong"),
    ],
)
def test_a_marking_defect_never_reaches_the_buyer_as_a_damaged_file(
    sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, defect: float
) -> None:
    # Stand-in for any future arithmetic defect in the mark: every cell's amplitude is
    # garbage. embed's self-check must refuse the copy, and the agent must write the plain
    # decrypted master, recorded as embed-failed, never the wrecked picture.
    def broken_cells(luma: Any, key: bytes, payload: int, params: Any) -> Any:
        rows, cols = luma.shape[0] // params.cell, luma.shape[1] // params.cell
        return np.full((rows, cols), defect, np.float32)

    monkeypatch.setattr(importlib.import_module("watermark.embed"), "mark_cells", broken_cells)
    master = photo_png()
    held = bought(sale, tmp_path / "work", master)
    destination = tmp_path / "library" / "harbour.png"

    delivery = deliver_to(held, destination, "image/png")

    assert (delivery.marked, delivery.unmarked_reason) == (False, UnmarkedReason.EMBED_FAILED)
    assert destination.read_bytes() == master
    assert delivery.sha256 == hashlib.sha256(master).digest()
    assert sorted(p.name for p in destination.parent.iterdir()) == ["harbour.png"]


def test_an_unusable_watermark_key_fails_delivery_rather_than_pass_as_unmarked(
    sale: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Licences carry 32-byte keys, so this stands in for a defect upstream of the rule.
    def refuse(*_args: Any, **_options: Any) -> Any:
        raise watermark.InvalidKeyError("key must be at least 16 bytes, got 5")

    monkeypatch.setattr("agent.deliver.marking_rule.licensed_copy", refuse)
    held = bought(sale, tmp_path / "work", photo_png())

    with pytest.raises(DeliveryError, match="watermark key or payload is unusable"):
        deliver_to(held, tmp_path / "out" / "harbour.png", "image/png")
    assert not (tmp_path / "out" / "harbour.png").exists()


def test_a_piece_damaged_on_disk_fails_delivery_and_leaves_no_file_behind(
    sale: Sale, tmp_path: Path
) -> None:
    held = bought(sale, tmp_path / "work", os.urandom(200_000))
    destination = tmp_path / "out" / "file.bin"
    destination.parent.mkdir()
    destination.write_bytes(b"an earlier copy")
    with open(held.work.ciphertext_path, "r+b") as stream:
        stream.seek(held.manifest.piece_offset(2) + 7)
        stream.write(b"\x00\x01\x02")

    with pytest.raises(DeliveryError, match="does not decrypt"):
        deliver_to(held, destination, "application/octet-stream")

    assert destination.read_bytes() == b"an earlier copy"  # never replaced by a bad copy
    assert sorted(p.name for p in destination.parent.iterdir()) == ["file.bin"]


def test_an_incomplete_work_is_not_delivered(sale: Sale, tmp_path: Path) -> None:
    work = PieceStore(tmp_path / "s").add_verified(sale.manifest, sale.manifest_token)
    keys = sale.licence.unwrap_keys(sale.bob)

    with pytest.raises(DeliveryError, match="13 piece"):
        deliver(
            store=work,
            manifest=sale.manifest,
            licence=sale.licence,
            keys=keys,
            destination=tmp_path / "out.bin",
            content_type="application/octet-stream",
        )
    assert not (tmp_path / "out.bin").exists()


def test_the_receipt_names_the_copy_and_the_bytes_each_peer_served(
    sale: Sale, tmp_path: Path
) -> None:
    held = bought(sale, tmp_path / "work", os.urandom(100_000))
    delivery = deliver_to(held, tmp_path / "x.bin", "application/octet-stream")

    token = receipt_for(
        delivery, device=sale.bob, licence=held.licence, served_bytes={"peer-a": 70_000}, now=NOW
    )

    receipt = read_receipt(token, licence=held.licence, now=NOW)
    assert receipt.output_sha256 == delivery.sha256
    assert receipt.served == {"peer-a": 70_000}
    assert (receipt.marked, receipt.unmarked_reason) == (False, UnmarkedReason.UNSUPPORTED_FORMAT)


def test_an_mp3_is_delivered_as_an_mp3_carrying_the_licence_payload_and_a_marked_receipt(
    sale: Sale, tmp_path: Path
) -> None:
    from tests.watermark.audio_files import song_file
    from watermark.audio.codec import extract_audio_bytes

    held = bought(sale, tmp_path / "work", song_file("MP3", 10.0))
    destination = tmp_path / "library" / "harbour.mp3"

    delivery = deliver_to(held, destination, "audio/mpeg")

    output = destination.read_bytes()
    assert (delivery.marked, delivery.unmarked_reason) == (True, None)
    assert delivery.sha256 == hashlib.sha256(output).digest()
    assert output != held.master
    assert output[:2] == b"\xff\xfb"  # an MPEG-1 Layer III frame, as the master began
    assert extract_audio_bytes(output, held.keys.watermark_key).payload == PAYLOAD
    token = receipt_for(delivery, device=sale.bob, licence=held.licence, served_bytes={},
                        now=NOW)
    receipt = read_receipt(token, licence=held.licence, now=NOW)
    assert (receipt.marked, receipt.unmarked_reason) == (True, None)
    assert receipt.output_sha256 == delivery.sha256


def test_a_video_is_marked_with_its_progress_told_and_an_epub_and_pdf_too(
    sale: Sale, tmp_path: Path
) -> None:
    from tests.watermark import epub_books, pdf_documents, video_clips
    from watermark.document.epub import extract_epub_bytes
    from watermark.document.pdf import extract_pdf_bytes
    from watermark.video import extract_video_bytes

    clip = video_clips.make_clip("gradients", width=320, height=180, fps=30, seconds=3.0,
                                 seed=8)
    held = bought(sale, tmp_path / "video", clip)
    told: list[tuple[int, int]] = []
    delivery = deliver(store=held.work, manifest=held.manifest, licence=held.licence,
                       keys=held.keys, destination=tmp_path / "out" / "clip.mp4",
                       content_type="video/mp4",
                       progress=lambda done, total: told.append((done, total)))
    assert (delivery.marked, delivery.unmarked_reason) == (True, None)
    copy = (tmp_path / "out" / "clip.mp4").read_bytes()
    read = extract_video_bytes(copy, held.keys.watermark_key)
    assert (read.found, read.payload) == (True, held.licence.watermark_payload)
    # 3 s at 30 frames a second: the last word is all 90 frames, never more, and the
    # count only grows
    assert told
    assert told[-1] == (90, 90)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(told))

    for name, master, content_type, reader in [
        ("book.pdf", pdf_documents.text_pdf(pages=2), "application/pdf", extract_pdf_bytes),
        ("book.epub", next(iter(epub_books.standard_books().values())),
         "application/epub+zip", extract_epub_bytes),
    ]:
        held = bought(sale, tmp_path / name, master)
        delivery = deliver_to(held, tmp_path / "out" / name, content_type)
        assert delivery.marked, delivery.detail
        found = reader((tmp_path / "out" / name).read_bytes(), held.keys.watermark_key)
        assert (found.found, found.payload) == (True, held.licence.watermark_payload)
