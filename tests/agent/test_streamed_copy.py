"""The copy written while the work downloads: same bytes and hash as a copy made after,
whatever order the pieces come in, resumed or not, and never a partial file left."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from agent.deliver import DeliveryError, StreamedCopy, streamed_copy
from agent.store import PieceStore, WorkStore
from licensing.core import UnmarkedReason, read_piece
from tests.agent.support import downloader, seeders
from tests.licensing.core_support import Sale

STREAM = "application/octet-stream"


def start(sale: Sale, work: WorkStore, destination: Path) -> StreamedCopy:
    copy = streamed_copy(store=work, manifest=sale.manifest, licence=sale.licence,
                         keys=sale.licence.unwrap_keys(sale.bob), destination=destination,
                         content_type=STREAM)
    assert copy is not None
    return copy


def held_work(sale: Sale, folder: Path) -> WorkStore:
    return PieceStore(folder).add_verified(sale.manifest, sale.manifest_token)


def feed(sale: Sale, work: WorkStore, copy: StreamedCopy, order: list[int]) -> None:
    """What the downloader does per piece: store it, then hand it to the copy."""
    for index in order:
        ciphertext = read_piece(sale.packaged.ciphertext_path, sale.manifest, index)
        work.write_piece(index, ciphertext)
        copy.on_piece(index, memoryview(ciphertext))


def only_the_destination(folder: Path, name: str) -> bool:
    return sorted(p.name for p in folder.iterdir()) == [name]


def test_pieces_in_any_order_give_the_master_and_its_sha256(sale: Sale, tmp_path: Path) -> None:
    work = held_work(sale, tmp_path / "store")
    destination = tmp_path / "library" / "copy.bin"
    copy = start(sale, work, destination)
    order = list(range(sale.manifest.piece_count))
    random.Random(5).shuffle(order)
    feed(sale, work, copy, order)
    delivery = copy.finish(work)
    assert destination.read_bytes() == sale.master
    assert delivery.sha256 == hashlib.sha256(sale.master).digest()
    assert delivery.size == len(sale.master)
    assert not delivery.marked
    assert delivery.unmarked_reason is UnmarkedReason.UNSUPPORTED_FORMAT
    assert only_the_destination(destination.parent, "copy.bin")


def test_pieces_held_before_the_run_are_filled_in_at_the_end(sale: Sale, tmp_path: Path) -> None:
    work = held_work(sale, tmp_path / "store")
    feed_first = [0, 5, 12]  # held from an earlier, interrupted run
    for index in feed_first:
        work.write_piece(index, read_piece(sale.packaged.ciphertext_path, sale.manifest, index))
    copy = start(sale, work, tmp_path / "copy.bin")
    feed(sale, work, copy, [i for i in range(13) if i not in feed_first][::-1])
    assert copy.finish(work).sha256 == hashlib.sha256(sale.master).digest()
    assert (tmp_path / "copy.bin").read_bytes() == sale.master


def test_a_piece_the_copy_could_not_open_is_taken_again_from_the_store(
    sale: Sale, tmp_path: Path
) -> None:
    work = held_work(sale, tmp_path / "store")
    copy = start(sale, work, tmp_path / "copy.bin")
    feed(sale, work, copy, list(range(1, 13)))
    good = read_piece(sale.packaged.ciphertext_path, sale.manifest, 0)
    work.write_piece(0, good)
    copy.on_piece(0, memoryview(bytes(len(good))))  # never raises into the downloader
    assert copy.finish(work).sha256 == hashlib.sha256(sale.master).digest()


def test_an_incomplete_download_leaves_no_copy(sale: Sale, tmp_path: Path) -> None:
    work = held_work(sale, tmp_path / "store")
    folder = tmp_path / "library"
    folder.mkdir()
    (folder / "copy.bin").write_bytes(b"an earlier copy")
    copy = start(sale, work, folder / "copy.bin")
    feed(sale, work, copy, [0, 1, 2])
    with pytest.raises(DeliveryError, match="10 piece"):
        copy.finish(work)
    assert (folder / "copy.bin").read_bytes() == b"an earlier copy"
    assert only_the_destination(folder, "copy.bin")
    copy.discard()  # a second time does nothing


def test_a_piece_damaged_in_the_store_fails_the_copy_and_leaves_nothing(
    sale: Sale, tmp_path: Path
) -> None:
    work = held_work(sale, tmp_path / "store")
    for index in range(13):
        work.write_piece(index, read_piece(sale.packaged.ciphertext_path, sale.manifest, index))
    with open(work.ciphertext_path, "r+b") as stream:
        stream.seek(sale.manifest.piece_offset(3) + 9)
        stream.write(b"\xff\xfe")
    folder = tmp_path / "library"
    copy = start(sale, work, folder / "copy.bin")
    with pytest.raises(DeliveryError, match="piece 3 does not authenticate"):
        copy.finish(work)
    assert list(folder.iterdir()) == []


def test_a_discarded_copy_leaves_nothing(sale: Sale, tmp_path: Path) -> None:
    work = held_work(sale, tmp_path / "store")
    copy = start(sale, work, tmp_path / "out" / "copy.bin")
    feed(sale, work, copy, [4, 2])
    copy.discard()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_copy_written_during_a_real_download_is_the_master(sale: Sale, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with seeders(sale, tmp_path, [range(7), range(5, 13)]) as swarm:
            work = held_work(sale, tmp_path / "buyer")
            copy = start(sale, work, tmp_path / "copy.bin")
            await downloader(sale, work, sources=[s.source() for s in swarm],
                             on_piece=copy.on_piece).run()
            delivery = copy.finish(work)
        assert delivery.sha256 == hashlib.sha256(sale.master).digest()
        assert (tmp_path / "copy.bin").read_bytes() == sale.master

    asyncio.run(scenario())


def test_the_marking_rule_loads_neither_numpy_nor_pillow_for_a_copy_it_does_not_mark() -> None:
    # The agent's start-up (every `get`) pays for what delivery imports.
    code = ("import sys, agent.workflow, watermark.rule;"
            "from watermark.rule import licensed_copy;"
            "licensed_copy(b'x', 'application/zip', bytes(32), 1);"
            "print(sorted(m for m in ('numpy', 'PIL', 'aiohttp') if m in sys.modules))")
    root = Path(__file__).resolve().parents[2]
    environment = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, check=True,
                         capture_output=True, text=True, env=environment)
    assert out.stdout.strip() == "[]"


def test_the_package_keeps_its_functions_when_their_modules_load() -> None:
    import watermark
    import watermark.codec  # loads the modules watermark.embed and watermark.extract
    from watermark.embed import embed as embed_function
    from watermark.extract import extract as extract_function

    assert watermark.embed is embed_function
    assert watermark.extract is extract_function


def _real_files() -> dict[str, tuple[Path, str]]:
    import sysconfig

    import skimage.data

    photos = Path(skimage.data.__file__).parent
    return {
        # a real photograph (a retina, JPEG, as its camera pipeline left it)
        "photograph": (photos / "retina.jpg", "application/octet-stream"),
        # a real document: the interpreter's own help text on the language's topics
        "document": (Path(sysconfig.get_paths()["stdlib"]) / "pydoc_data" / "topics.py",
                     "text/x-python"),
    }


@pytest.mark.parametrize("name", ["photograph", "document"])
def test_real_files_come_out_byte_for_byte(sale: Sale, tmp_path: Path, name: str) -> None:
    from tests.agent.test_deliver import bought

    path, content_type = _real_files()[name]
    original = path.read_bytes()
    held = bought(sale, tmp_path / "work", original, piece_size=1 << 16)
    assert held.manifest.piece_count > 2
    copy = streamed_copy(store=held.work, manifest=held.manifest, licence=held.licence,
                         keys=held.keys, destination=tmp_path / "out" / path.name,
                         content_type=content_type)
    assert copy is not None
    order = list(range(held.manifest.piece_count))
    random.Random(3).shuffle(order)
    for index in order[: len(order) // 2]:  # half as they arrive, the rest at the end
        copy.on_piece(index, memoryview(held.work.read_piece(index)))
    delivery = copy.finish(held.work)
    assert (tmp_path / "out" / path.name).read_bytes() == original
    assert delivery.sha256 == hashlib.sha256(original).digest()
