"""The EPUB mark's benchmark, one command:  .venv/bin/python benchmarks/documents/epub.py

Seven books (EPUB 3 and EPUB 2; six of 3 to 6 chapters of 600 to 1,100 words, four of
them with photographs, and one of 9 chapters of 2,500 words; tests/watermark/epub_books.py
builds them from Debian's licence texts and scikit-image's photographs) are each marked
under several keys with a random payload, then attacked (repackaged, XHTML re-serialised,
metadata stripped, images removed, one chapter alone, excerpts, NFKC, zero-width
characters removed) and read blind and informed. A read counts as
a hit only if it names the copy's payload; any other payload named is a false positive.
Unmarked masters and copies read under another key give the false-positive rows.
Every copy and every master is also checked with epubcheck (--no-epubcheck skips it).

Writes a Markdown section to /tmp/sections/epub-bench.md (--out to change) and prints it.
Single process; about six minutes on two shared cores with epubcheck.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np

from benchmarks.common import machine
from tests.watermark import epub_books as eb
from tests.watermark.test_epub import epubcheck_command
from watermark.document.epub import check_epub, embed_epub_bytes, extract_epub_bytes

Attack = Callable[[bytes], bytes]
ATTACKS: dict[str, tuple[Attack, bool]] = {  # name -> (attack, read informed too)
    "none": (lambda d: d, True),
    "repackaged (stored, reversed order)": (
        lambda d: eb.repackage(d, compression=zipfile.ZIP_STORED, reverse=True), True),
    "repackaged (deflate 9)": (lambda d: eb.repackage(d, level=9), False),
    "XHTML re-serialised (lxml, ASCII)": (eb.reserialise, True),
    "metadata stripped": (eb.strip_identifier, True),
    "images removed (grey) + metadata stripped": (
        lambda d: eb.remove_images(eb.strip_identifier(d)), False),
    "one chapter only (the others' XHTML removed)": (eb.one_chapter, True),
    "one chapter only, metadata stripped, images removed": (
        lambda d: eb.remove_images(eb.strip_identifier(eb.one_chapter(d))), False),
    "excerpt: 2,000 words of one chapter, as text only": (lambda d: eb.excerpt(d, 2000), True),
    "excerpt: 1,000 words of one chapter, as text only": (lambda d: eb.excerpt(d, 1000), True),
    "NFKC + metadata stripped": (
        lambda d: eb.strip_identifier(eb.map_text(d, "nfkc")), True),
    "zero-width removed + metadata stripped": (
        lambda d: eb.strip_identifier(eb.map_text(d, "strip")), True),
}


def epubcheck_all(files: dict[str, bytes]) -> dict[str, bool]:
    command = epubcheck_command()
    if command is None:
        return {}
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            path = Path(folder) / "book.epub"
            path.write_bytes(data)
            done = subprocess.run([*command, str(path)], capture_output=True, text=True,
                                  timeout=300, check=False)
            out[name] = done.returncode == 0 and "0 errors / 0 warnings" in done.stdout
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=3, help="keys (copies) per book")
    parser.add_argument("--no-epubcheck", action="store_true")
    parser.add_argument("--random-keys", type=int, default=50,
                        help="extra random keys each unmarked master is read under (blind)")
    parser.add_argument("--out", default="/tmp/sections/epub-bench.md")  # noqa: S108
    args = parser.parse_args()
    rng = np.random.default_rng(20261203)
    started = time.perf_counter()
    books = eb.standard_books()
    books["Collected"] = eb.long_book()
    keys = [rng.bytes(32) for _ in range(args.keys)]
    other = rng.bytes(32)

    copies: list[tuple[str, bytes, int, bytes]] = []  # title, key, payload, copy
    embed_seconds: dict[str, list[float]] = {t: [] for t in books}
    missed: Counter[str] = Counter()  # row: books whose copies a blind read missed
    for title, data in books.items():
        for key in keys:
            payload = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
            t0 = time.perf_counter()
            copy = embed_epub_bytes(data, key, payload)
            embed_seconds[title].append(time.perf_counter() - t0)
            copies.append((title, key, payload, copy))

    rows = []
    wrong_total = 0
    for name, (attack, informed_too) in ATTACKS.items():
        hits = {"blind": 0, "informed": 0}
        wrong = 0
        evidence: Counter[str] = Counter()
        informed_reads = 0
        seconds = []
        for title, key, payload, copy in copies:
            suspect = attack(copy)
            t0 = time.perf_counter()
            result = extract_epub_bytes(suspect, key)
            seconds.append(time.perf_counter() - t0)
            hits["blind"] += result.found and result.payload == payload
            if result.payload != payload:
                missed[f"{name}: {title}"] += 1
            wrong += result.found and result.payload != payload
            evidence.update(result.evidence if result.payload == payload else ())
            if informed_too:
                informed_reads += 1
                result = extract_epub_bytes(suspect, key, reference=books[title])
                hits["informed"] += result.found and result.payload == payload
                wrong += result.found and result.payload != payload
        wrong_total += wrong
        total = len(copies)
        carried = ", ".join(f"{c} {evidence[c]}" for c in ("identifier", "text", "images"))
        rows.append(f"| {name} | {hits['blind']}/{total} | "
                    + (f"{hits['informed']}/{informed_reads}" if informed_reads else "not run")
                    + f" | {carried} | {wrong} | {statistics.median(seconds) * 1000:.0f} ms |")

    misses = "; ".join(f"{row} {count}" for row, count in missed.items())
    false_reads = 0
    false_hits = 0
    for data in books.values():
        for key in [*keys, other]:
            for reference in (None, data):
                false_reads += 1
                false_hits += extract_epub_bytes(data, key, reference=reference).found
        for _ in range(args.random_keys):
            false_reads += 1
            false_hits += extract_epub_bytes(data, rng.bytes(32)).found
    for title, _key, _payload, copy in copies:
        false_reads += 1
        false_hits += extract_epub_bytes(copy, other).found
        false_hits += extract_epub_bytes(copy, other, reference=books[title]).found
        false_reads += 1

    checks = {}
    if not args.no_epubcheck:
        files = {f"master {t}": d for t, d in books.items()}
        files.update({f"copy {t} {i}": c for i, (t, _k, _p, c) in enumerate(copies)
                      if i % args.keys == 0})
        checks = epubcheck_all(files)

    info = {t: check_epub(d) for t, d in books.items()}
    def version(data: bytes) -> str:
        opf = dict(eb.unzip(data))["OEBPS/content.opf"]
        return "3" if b'version="3.0"' in opf else "2"

    shape = "; ".join(f"{t}: EPUB {version(d)}, "
                      f"{info[t].documents} chapters, {info[t].images} images, "
                      f"{info[t].characters:,} characters" for t, d in books.items())
    embed_all = [s for values in embed_seconds.values() for s in values]
    lines = [
        "### EPUB mark",
        "",
        f"Command: `.venv/bin/python benchmarks/documents/epub.py --keys {args.keys}"
        f"{' --no-epubcheck' if args.no_epubcheck else ''}`. "
        f"Machine: {machine()}. Date: {dt.datetime.now(tz=dt.UTC):%Y-%m-%d %H:%M} UTC. "
        f"Total run time {time.perf_counter() - started:.0f} s; load average at the end "
        f"{os.getloadavg()[0]:.1f} (the cores are shared: times are upper bounds).",
        "",
        f"Books ({len(books)}): {shape}. {args.keys} keys per book, a random 64-bit payload "
        f"per copy: {len(copies)} copies. A hit names the copy's payload; 'carriers' counts "
        "the blind reads in which each carrier gave it.",
        "",
        "| suspect copy | blind | informed | carriers (blind) | wrong payload | blind read |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Blind misses by row and book: {misses or 'none'}.",
        "",
        f"False positives: {false_hits} of {false_reads} reads named a payload: unmarked "
        f"masters (blind and informed under every key, and blind under {args.random_keys} "
        "more random keys each) and copies read under another key (blind and informed); "
        f"{wrong_total} wrong payloads among the attacked copies' reads.",
        "",
        "Embedding (identifier, text mark, image mark and the copy's own read-back check): "
        f"median {statistics.median(embed_all) * 1000:.0f} ms per book, "
        + ", ".join(f"{t} {statistics.median(v) * 1000:.0f} ms" for t, v in embed_seconds.items())
        + ".",
    ]
    if checks:
        passed = sum(checks.values())
        lines += ["", f"epubcheck 4.2.6: {passed} of {len(checks)} files (every master, one copy "
                  f"of each book) passed with 0 errors and 0 warnings"
                  + ("" if passed == len(checks) else
                     ": failed " + ", ".join(n for n, ok in checks.items() if not ok)) + "."]
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
