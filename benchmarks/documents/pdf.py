"""The PDF mark's benchmark, one command:  .venv/bin/python benchmarks/documents/pdf.py

Seven documents (two real TeX manuals from Debian's doc packages; generated ragged prose
in Helvetica; justified Times typeset by Ghostscript; text with photographs; photographs
only; tests/watermark/pdf_documents.py builds them) are each marked under several keys
with a random payload, then attacked (qpdf re-save, Ghostscript pdfwrite, any 2 pages,
pages rasterised at 150 dpi and wrapped back into a PDF, metadata stripped) and read
blind and informed. A read counts as a hit only if it names the copy's payload; any other
payload named is a false positive. Unmarked masters and copies read under another key give
the false-positive rows. "All page pairs" reads every pair of pages of each copy from the
text mark alone (per-page soft values summed, one decode per pair), the exhaustive form of
"any 2 pages". Every copy is checked with `qpdf --check` and rendered by `pdftoppm`.

Writes a Markdown section to /tmp/sections/pdf-bench.md (--out to change) and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pypdfium2 as pdfium  # noqa: I001
import pypdfium2.version

from benchmarks.common import machine
from tests.watermark import pdf_documents as docs
from watermark import ecc
from watermark.document.pdf import check_pdf, embed_pdf_bytes, extract_pdf_bytes
from watermark.document.pdf import codec, textmark
from watermark.payload import INFO_BITS, decode

DOCUMENTS: dict[str, Callable[[], bytes]] = {
    "libtasn1 manual (pdfTeX, 36 p.)": lambda: docs.real(docs.LIBTASN1),
    "shared-mime-info spec (LaTeX, 17 p.)": lambda: docs.real(docs.SHARED_MIME_INFO),
    "ragged Helvetica prose (6 p.)": lambda: docs.text_pdf(pages=6, start=300),
    "justified Times, Ghostscript (3 p.)": lambda: docs.justified_pdf(3),
    "prose + photographs (3 p.)": docs.photo_pdf,
    "photographs only (3 p.)": lambda: docs.photo_pdf(with_text=False),
    "ragged Helvetica prose, short pages (4 p.)": lambda: docs.text_pdf(pages=4,
                                                                        lines_per_page=25),
}


def tool_version(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return (done.stdout.splitlines() or ["?"])[0].strip()


def valid(data: bytes) -> bool:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "copy.pdf"
        path.write_bytes(data)
        checked = subprocess.run(["qpdf", "--check", str(path)], check=False,
                                 capture_output=True)
        rendered = subprocess.run(["pdftoppm", "-r", "10", "-png", str(path),
                                   str(Path(folder) / "p")], check=False, capture_output=True)
        return checked.returncode == 0 and rendered.returncode == 0 and not rendered.stderr


def page_pairs(copy: bytes, master: bytes, key: bytes, payload: int) -> tuple[int, int, int]:
    """(pairs, read blind, read informed) over every pair of pages, text mark only."""
    suspect = codec._layouts(pdfium.PdfDocument(copy))
    original = codec._layouts(pdfium.PdfDocument(master))
    blind = [textmark.blind_soft([layout], key)[0] for layout in suspect]
    informed = [textmark.informed_soft([(a, b)], key)[0] for a, b in zip(original, suspect,
                                                                          strict=True)]
    pairs = hits_blind = hits_informed = 0
    for i in range(len(suspect)):
        for j in range(i + 1, len(suspect)):
            pairs += 1
            soft = blind[i] + blind[j]
            decoded = decode(key, soft)
            if decoded.payload is None:
                estimate = ecc.encode(ecc.decode(soft, INFO_BITS))
                decoded = decode(key, textmark.blind_soft([suspect[i], suspect[j]], key,
                                                          estimate)[0])
            hits_blind += decoded.payload == payload
            hits_informed += decode(key, informed[i] + informed[j]).payload == payload
    return pairs, hits_blind, hits_informed


def text_false_positives(master: bytes, keys: list[bytes]) -> tuple[int, int]:
    """(decodes, payloads named) of the text mark of an unmarked master under many keys,
    blind, with the second decode after cancellation as the reader does it."""
    layouts = codec._layouts(pdfium.PdfDocument(master))
    decodes = named = 0
    for key in keys:
        soft, _used = textmark.blind_soft(layouts, key)
        decodes += 1
        decoded = decode(key, soft)
        if decoded.payload is None:
            estimate = ecc.encode(ecc.decode(soft, INFO_BITS))
            decoded = decode(key, textmark.blind_soft(layouts, key, estimate)[0])
            decodes += 1
        named += decoded.payload is not None
    return decodes, named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--fp-keys", type=int, default=300,
                        help="random keys for the text mark's false-positive count")
    parser.add_argument("--out", type=Path, default=Path("/tmp/sections/pdf-bench.md"))  # noqa: S108
    args = parser.parse_args()
    rng = random.Random(20261203)
    rows: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    false_positives: Counter[str] = Counter()
    embed_per_page: list[float] = []
    read_times: list[float] = []
    invalid: list[str] = []
    pairs_table: list[tuple[str, int, int, int]] = []
    started = time.time()
    for name, make in DOCUMENTS.items():
        master = make()
        info = check_pdf(master)
        pair_totals = [0, 0, 0]
        for _trial in range(args.keys):
            key = rng.randbytes(32)
            other = rng.randbytes(32)
            payload = rng.getrandbits(64)
            began = time.process_time()
            copy = embed_pdf_bytes(master, key, payload)
            embed_per_page.append((time.process_time() - began) / info.pages)
            if not valid(copy):
                invalid.append(name)
            first, second = sorted(rng.sample(range(info.pages), 2))
            raster_first = rng.randrange(info.pages - 1) + 1
            attacks: dict[str, Callable[[bytes], bytes]] = {
                "none": lambda data: data,
                "qpdf re-save": docs.qpdf_resave,
                "Ghostscript pdfwrite": docs.gs_pdfwrite,
                "any 2 pages (metadata stripped)": lambda data, a=first, b=second: (
                    docs.strip_metadata(docs.extract_pages(data, (a, b)))),
                "rasterised 150 dpi, 2 pages": lambda data, a=raster_first: docs.rasterise(
                    data, 150, (a, a + 1)),
                "metadata stripped": docs.strip_metadata,
                "pdfwrite + metadata stripped": lambda data: docs.strip_metadata(
                    docs.gs_pdfwrite(data)),
            }
            for attack, apply in attacks.items():
                suspect = apply(copy)
                for mode, reference in (("blind", None), ("informed", master)):
                    began = time.process_time()
                    result = extract_pdf_bytes(suspect, key, reference)
                    read_times.append(time.process_time() - began)
                    cell = rows[attack][mode]
                    cell["trials"] += 1
                    if result.found and result.payload == payload:
                        cell["hits"] += 1
                        for carrier in result.evidence:
                            cell[carrier] += 1
                    elif result.found:
                        false_positives["wrong payload on a marked copy"] += 1
            for mode, reference in (("blind", None), ("informed", master)):
                for label, suspect, read_key in (("unmarked master", master, key),
                                                 ("copy, another key", copy, other)):
                    false_positives[f"{label}, {mode} (reads)"] += 1
                    if extract_pdf_bytes(suspect, read_key, reference).found:
                        false_positives[f"{label}, {mode} (found)"] += 1
            if info.text_pages >= 2:
                for index, value in enumerate(page_pairs(copy, master, key, payload)):
                    pair_totals[index] += value
        if pair_totals[0]:
            pairs_table.append((name, *pair_totals))
        print(f"{name}: done at {time.time() - started:.0f} s", file=sys.stderr)
    fp_keys = [rng.randbytes(32) for _ in range(args.fp_keys)]
    for name in ("ragged Helvetica prose (6 p.)", "justified Times, Ghostscript (3 p.)",
                 "prose + photographs (3 p.)"):
        decodes, named = text_false_positives(DOCUMENTS[name](), fp_keys)
        false_positives["text decodes, unmarked, random keys"] += decodes
        false_positives["text payloads named, unmarked, random keys"] += named
    write(args, rows, false_positives, embed_per_page, read_times, invalid, pairs_table,
          time.time() - started)


def write(args: argparse.Namespace, rows: dict[str, dict[str, Counter[str]]],
          false_positives: Counter[str], embed_per_page: list[float], read_times: list[float],
          invalid: list[str], pairs_table: list[tuple[str, int, int, int]], elapsed: float
          ) -> None:
    lines = [
        "### PDF mark benchmark",
        "",
        f"Command: `.venv/bin/python benchmarks/documents/pdf.py --keys {args.keys}` "
        f"({len(DOCUMENTS)} documents x {args.keys} keys, a random 64-bit payload each; "
        f"{elapsed / 60:.1f} min).  ",
        f"Machine: {machine()}; {dt.datetime.now(tz=dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"pikepdf {__import__('pikepdf').__version__}, "
        f"pypdfium2 {pdfium.version.PYPDFIUM_INFO} (PDFium {pdfium.version.PDFIUM_INFO}), "
        f"Ghostscript {tool_version(['gs', '--version'])}, {tool_version(['qpdf', '--version'])}.",
        "",
        "Exact payload read back, of all trials; the carriers that gave it "
        "(identifier / text / images) in brackets:",
        "",
        "| attack | blind | informed |",
        "|---|---|---|",
    ]
    for attack, modes in rows.items():
        cells = []
        for mode in ("blind", "informed"):
            cell = modes[mode]
            cells.append(f"{cell['hits']}/{cell['trials']} ({cell['identifier']} / "
                         f"{cell['text']} / {cell['images']})")
        lines.append(f"| {attack} | {cells[0]} | {cells[1]} |")
    lines += ["", "Every pair of pages, text mark alone (no identifier, no images):", "",
              "| document | page pairs (all keys) | read blind | read informed |",
              "|---|---|---|---|"]
    for name, pairs, blind, informed in pairs_table:
        lines.append(f"| {name} | {pairs} | {blind} ({100 * blind / pairs:.0f}%) | "
                     f"{informed} ({100 * informed / pairs:.0f}%) |")
    lines += ["", "False positives (a payload named where there is none to name):", "",
              "| suspect | reads | found |", "|---|---|---|"]
    for label in ("unmarked master", "copy, another key"):
        for mode in ("blind", "informed"):
            reads = false_positives[f"{label}, {mode} (reads)"]
            found = false_positives[f"{label}, {mode} (found)"]
            lines.append(f"| {label}, {mode} | {reads} | {found} |")
    lines.append(f"| marked copy, wrong payload named | - | "
                 f"{false_positives['wrong payload on a marked copy']} |")
    lines.append(f"| text mark of 3 unmarked masters, {args.fp_keys} random keys each "
                 f"(decodes) | {false_positives['text decodes, unmarked, random keys']} | "
                 f"{false_positives['text payloads named, unmarked, random keys']} |")
    lines += ["", f"Embed time per page (CPU, one process): median "
              f"{1000 * statistics.median(embed_per_page):.0f} ms, max "
              f"{1000 * max(embed_per_page):.0f} ms. Read time per call (CPU): median "
              f"{statistics.median(read_times):.2f} s, max {max(read_times):.1f} s.",
              f"Copies failing `qpdf --check` or `pdftoppm`: {len(invalid)}"
              + (f" ({', '.join(sorted(set(invalid)))})" if invalid else "") + ".", ""]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
