"""EPUB 2 and EPUB 3 books for the EPUB mark's tests and benchmark, built from real text
and real photographs that are already on the machine, and the attacks a copy meets.

Text: Debian's licence texts (/usr/share/common-licenses: GPL, LGPL, GFDL, Apache, MPL,
Artistic, CC0) and Python's own Zen (the `this` module), cut into chapters of paragraphs,
with the inline markup books have (emphasis, a code span, a preformatted block, a
non-breaking space reference). Images: scikit-image's photographs
(tests/watermark/photographs.py) as JPEG and PNG. Every archive is written with fixed
timestamps, so a book's bytes are the same in every run.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import re
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree
from PIL import Image

from tests.watermark.photographs import photograph

LICENSES = Path("/usr/share/common-licenses")
SOURCES = ["GPL-3", "GFDL-1.3", "Apache-2.0", "MPL-2.0", "LGPL-2.1", "GPL-2", "Artistic",
           "CC0-1.0"]
DATE = (2024, 5, 17, 12, 0, 0)
XHTML = "http://www.w3.org/1999/xhtml"
OPF = "http://www.idpf.org/2007/opf"
DC = "http://purl.org/dc/elements/1.1/"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


@cache
def paragraphs(source: str) -> tuple[str, ...]:
    """The paragraphs of one text source: blank-line separated, whitespace collapsed."""
    if source == "zen":
        with contextlib.redirect_stdout(io.StringIO()):
            import this

        raw = codecs.decode(this.s, "rot13")
    else:
        raw = (LICENSES / source).read_text(encoding="utf-8", errors="replace")
    out = []
    for block in re.split(r"\n\s*\n", raw):
        text = " ".join(block.split())
        if len(text) > 1:
            out.append(text)
    return tuple(out)


@dataclass
class Chapter:
    title: str
    paragraphs: list[str]
    image: str | None = None  # name of an image in the book, shown after the first paragraph


@dataclass
class BookSpec:
    title: str
    version: int = 3  # 2 or 3
    chapters: list[Chapter] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes
    language: str = "en"


def chapters_from(sources: list[str], words_per_chapter: int, count: int) -> list[Chapter]:
    """`count` chapters of about `words_per_chapter` words, taken in turn from `sources`."""
    pool = [p for source in sources for p in paragraphs(source)]
    chapters = []
    position = 0
    for number in range(count):
        chosen: list[str] = []
        words = 0
        while words < words_per_chapter:
            paragraph = pool[position % len(pool)]
            position += 1
            chosen.append(paragraph)
            words += len(paragraph.split())
        chapters.append(Chapter(f"Chapter {number + 1}", chosen))
    return chapters


def photo_bytes(name: str, fmt: str, width: int = 480) -> bytes:
    image = photograph(name)
    height = round(image.height * width / image.width)
    image = image.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=90)
    else:
        image.save(out, fmt)
    return out.getvalue()


_MEDIA = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
          ".webp": "image/webp", ".gif": "image/gif"}


def _paragraph_xhtml(text: str, number: int) -> str:
    """One paragraph with a little inline markup, the way books have it."""
    words = escape(text).split(" ")
    if number % 3 == 1 and len(words) > 6:
        words[2] = f"<em>{words[2]}</em>"
        words[5] = f"<code>{words[5]}</code>"
    if number % 4 == 2 and len(words) > 4:
        words[3] = words[3] + "&#160;" + words[4]
        del words[4]
    return "<p>" + " ".join(words) + "</p>"


def _chapter_xhtml(spec: BookSpec, chapter: Chapter) -> str:
    body = [f"<h1>{escape(chapter.title)}</h1>"]
    for number, text in enumerate(chapter.paragraphs):
        body.append(_paragraph_xhtml(text, number))
        if number == 0 and chapter.image:
            body.append(f'<div class="figure"><img src="images/{chapter.image}" '
                        f'alt="A photograph"/></div>')
        if number == 2:
            body.append("<pre>for word in book:\n    print(word, end=' ')</pre>")
    if spec.version == 3:
        head = ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
                f'<html xmlns="{XHTML}" xmlns:epub="http://www.idpf.org/2007/ops" '
                f'xml:lang="{spec.language}" lang="{spec.language}">\n')
    else:
        head = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
                '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">\n'
                f'<html xmlns="{XHTML}" xml:lang="{spec.language}">\n')
    return (head + f"<head>\n<title>{escape(chapter.title)}</title>\n"
            '<link rel="stylesheet" type="text/css" href="style.css"/>\n</head>\n<body>\n'
            + "\n".join(body) + "\n</body>\n</html>\n")


def build(spec: BookSpec, *, extra: dict[str, bytes] | None = None) -> bytes:
    """The EPUB for `spec` (valid for epubcheck), plus any `extra` members verbatim."""
    book_id = f"urn:uuid:{uuid.UUID(bytes=hashlib.sha256(spec.title.encode()).digest()[:16])}"
    files: dict[str, bytes] = {}
    items = ['<item id="css" href="style.css" media-type="text/css"/>']
    spine = []
    for number, chapter in enumerate(spec.chapters, 1):
        files[f"OEBPS/chapter{number}.xhtml"] = _chapter_xhtml(spec, chapter).encode()
        items.append(f'<item id="c{number}" href="chapter{number}.xhtml" '
                     'media-type="application/xhtml+xml"/>')
        spine.append(f'<itemref idref="c{number}"/>')
    for number, (name, data) in enumerate(spec.images.items(), 1):
        files[f"OEBPS/images/{name}"] = data
        items.append(f'<item id="i{number}" href="images/{name}" '
                     f'media-type="{_MEDIA[Path(name).suffix]}"/>')
    files["OEBPS/style.css"] = b"body { margin: 1em; }\np { text-indent: 1.5em; }\n"
    links = "\n".join(f'<li><a href="chapter{n}.xhtml">{escape(c.title)}</a></li>'
                      for n, c in enumerate(spec.chapters, 1))
    points = "\n".join(
        f'<navPoint id="n{n}" playOrder="{n}"><navLabel><text>{escape(c.title)}</text>'
        f'</navLabel><content src="chapter{n}.xhtml"/></navPoint>'
        for n, c in enumerate(spec.chapters, 1))
    files["OEBPS/toc.ncx"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">\n'
        f'<head><meta name="dtb:uid" content="{book_id}"/><meta name="dtb:depth" content="1"/>'
        '<meta name="dtb:totalPageCount" content="0"/><meta name="dtb:maxPageNumber" '
        f'content="0"/></head>\n<docTitle><text>{escape(spec.title)}</text></docTitle>\n'
        f"<navMap>\n{points}\n</navMap>\n</ncx>\n").encode()
    items.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
    if spec.version == 3:
        files["OEBPS/nav.xhtml"] = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
            f'<html xmlns="{XHTML}" xmlns:epub="http://www.idpf.org/2007/ops">\n'
            '<head><title>Contents</title></head>\n<body>\n<nav epub:type="toc" id="toc">'
            f"<h1>Contents</h1>\n<ol>\n{links}\n</ol></nav>\n</body>\n</html>\n").encode()
        items.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
                     'properties="nav"/>')
        metadata = (f'<dc:identifier id="bookid">{book_id}</dc:identifier>\n'
                    f"<dc:title>{escape(spec.title)}</dc:title>\n"
                    f"<dc:language>{spec.language}</dc:language>\n"
                    '<meta property="dcterms:modified">2024-05-17T12:00:00Z</meta>')
        package = f'<package xmlns="{OPF}" version="3.0" unique-identifier="bookid">'
    else:
        metadata = (f'<dc:identifier id="bookid" opf:scheme="UUID">{book_id}</dc:identifier>\n'
                    f"<dc:title>{escape(spec.title)}</dc:title>\n"
                    f"<dc:language>{spec.language}</dc:language>")
        package = f'<package xmlns="{OPF}" version="2.0" unique-identifier="bookid">'
    files["OEBPS/content.opf"] = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{package}\n'
        f'<metadata xmlns:dc="{DC}" xmlns:opf="{OPF}">\n{metadata}\n</metadata>\n'
        "<manifest>\n" + "\n".join(items) + "\n</manifest>\n"
        '<spine toc="ncx">\n' + "\n".join(spine) + "\n</spine>\n</package>\n").encode()
    files["META-INF/container.xml"] = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<container version="1.0" '
        b'xmlns="urn:oasis:names:tc:opendocument:xmlns:container">\n<rootfiles>\n'
        b'<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>\n'
        b"</rootfiles>\n</container>\n")
    files.update(extra or {})
    return zip_members([("mimetype", b"application/epub+zip"), *sorted(files.items())])


def zip_members(members: list[tuple[str, bytes]], *, compression: int = zipfile.ZIP_DEFLATED,
                level: int | None = None) -> bytes:
    """A zip of `members` in this order, mimetype stored, fixed timestamps."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=DATE)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else compression
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, compresslevel=level)
    return out.getvalue()


# -- the corpus ------------------------------------------------------------------------

def standard_books() -> dict[str, bytes]:
    """Six books: EPUB 3 and 2, 3 to 6 chapters, with and without photographs."""
    jpeg = {f"{n}.jpg": photo_bytes(n, "JPEG") for n in ("chelsea", "astronaut", "rocket")}
    png = {f"{n}.png": photo_bytes(n, "PNG", 400) for n in ("coffee", "camera")}
    specs = [
        BookSpec("Freedoms", 3, chapters_from(["GPL-3"], 1000, 5), {"chelsea.jpg": jpeg[
            "chelsea.jpg"], "coffee.png": png["coffee.png"]}),
        BookSpec("Documentation", 3, chapters_from(["GFDL-1.3", "zen"], 900, 4),
                 {"astronaut.jpg": jpeg["astronaut.jpg"]}),
        BookSpec("Grants", 2, chapters_from(["Apache-2.0", "MPL-2.0"], 800, 5),
                 {"rocket.jpg": jpeg["rocket.jpg"], "camera.png": png["camera.png"]}),
        BookSpec("Libraries", 2, chapters_from(["LGPL-2.1"], 1100, 4)),
        BookSpec("Versions", 3, chapters_from(["GPL-2", "Artistic"], 700, 6)),
        BookSpec("Dedications", 3, chapters_from(["CC0-1.0", "zen", "MPL-2.0"], 600, 3),
                 {"coffee.png": png["coffee.png"]}),
    ]
    for spec in specs:
        names = list(spec.images)
        for number, chapter in enumerate(spec.chapters):
            if number < len(names):
                chapter.image = names[number]
    return {spec.title: build(spec) for spec in specs}


# -- reading a book back with nothing of the library under test ------------------------

def unzip(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def body_text(xhtml: bytes) -> str:
    """All text of a content document's body, as a reader would be given it."""
    root = etree.fromstring(xhtml, etree.XMLParser(resolve_entities=False))
    body = root.find(f"{{{XHTML}}}body")
    return "".join((body if body is not None else root).itertext())


def visible(text: str) -> str:
    return "".join(ch for ch in text if ch not in ZERO_WIDTH)


# -- what a copy meets ------------------------------------------------------------------

def repackage(data: bytes, *, compression: int = zipfile.ZIP_DEFLATED, level: int = 9,
              reverse: bool = False) -> bytes:
    """Unzip and zip again, other compression and (optionally) the order reversed, mimetype
    still first, the way an unzip/zip round trip or a library tool does."""
    members = unzip(data)
    first = [m for m in members if m[0] == "mimetype"]
    rest = [m for m in members if m[0] != "mimetype"]
    if reverse:
        rest.reverse()
    return zip_members(first + rest, compression=compression, level=level)


def reserialise(data: bytes) -> bytes:
    """Every XHTML document parsed and written again by lxml (as an editing tool would:
    ASCII output with character references, and reindented)."""
    out = []
    for name, original in unzip(data):
        content = original
        if name.endswith(".xhtml"):
            tree = etree.fromstring(original, etree.XMLParser(resolve_entities=False))
            content = etree.tostring(tree, encoding="ascii", xml_declaration=True)
        out.append((name, content))
    return zip_members(out)


def strip_identifier(data: bytes) -> bytes:
    """The package document with every dc:identifier but the book's unique one removed."""
    out = []
    for name, original in unzip(data):
        content = original
        if name.endswith(".opf"):
            root = etree.fromstring(content)
            unique = root.get("unique-identifier")
            for element in root.iter(f"{{{DC}}}identifier"):
                if element.get("id") != unique:
                    element.getparent().remove(element)
            content = etree.tostring(root, encoding="utf-8", xml_declaration=True)
        out.append((name, content))
    return zip_members(out)


def remove_images(data: bytes) -> bytes:
    """Every image member replaced by a flat grey picture of the same format and size."""
    out = []
    for name, original in unzip(data):
        content = original
        if name.endswith((".jpg", ".png")):
            image = Image.open(io.BytesIO(content))
            blank = Image.new(image.mode, image.size, 128 if image.mode == "L" else (128,) * 3)
            buffer = io.BytesIO()
            blank.save(buffer, image.format)
            content = buffer.getvalue()
        out.append((name, content))
    return zip_members(out)


def one_chapter(data: bytes, keep: int = 2) -> bytes:
    """Only chapter `keep` is left (its XHTML, the package and its images): what someone
    who shares one chapter passes on."""
    out = []
    for name, original in unzip(data):
        content = original
        match = re.search(r"chapter(\d+)\.xhtml$", name)
        if match and int(match.group(1)) != keep:
            continue
        if name.endswith(".opf"):
            text = content.decode()
            text = re.sub(r'<item id="c(\d+)"[^>]*/>\n?',
                          lambda m: m.group(0) if int(m.group(1)) == keep else "", text)
            text = re.sub(r'<itemref idref="c(\d+)"/>\n?',
                          lambda m: m.group(0) if int(m.group(1)) == keep else "", text)
            content = text.encode()
        out.append((name, content))
    return zip_members(out)


def map_text(data: bytes, change: str) -> bytes:
    """Every content document's text changed: "nfkc" (Unicode NFKC normalisation) or
    "strip" (every zero-width character removed, as text sanitisers do)."""
    out = []
    for name, original in unzip(data):
        content = original
        if name.endswith(".xhtml"):
            text = content.decode("utf-8")
            text = unicodedata.normalize("NFKC", text) if change == "nfkc" else visible(text)
            content = text.encode("utf-8")
        out.append((name, content))
    return zip_members(out)


def rewrap(data: bytes, every: int = 5) -> bytes:
    """Every `every`-th space of the text between tags turned into a line break and an
    indent, as a "prettify" or rewrapping tool does (a reader shows the same text)."""
    out = []
    for name, original in unzip(data):
        content = original
        if name.endswith(".xhtml"):
            count = 0

            def wrap(match: re.Match[str]) -> str:
                nonlocal count
                count += 1
                return "\n    " if count % every == 0 else " "

            text = content.decode("utf-8")
            text = re.sub(r">[^<]*<", lambda m: re.sub(" ", wrap, m.group(0)), text)
            content = text.encode("utf-8")
        out.append((name, content))
    return zip_members(out)


def break_package(data: bytes) -> bytes:
    """The package document cut in half: only the content documents are left to read."""
    return zip_members([(n, c[: len(c) // 2] if n.endswith(".opf") else c)
                        for n, c in unzip(data)])


def long_book() -> bytes:
    """A book of about 22,000 words in 9 chapters (every text source in turn, no images),
    long enough that the text mark uses only its density share of the spaces."""
    return build(BookSpec("Collected", 3, chapters_from([*SOURCES, "zen"], 2500, 9)))


def excerpt(data: bytes, words: int, keep: int = 2) -> bytes:
    """Only the first `words` words of chapter `keep` (whole paragraphs) are left, in an
    EPUB with no identifier and no images: an excerpt passed on as text."""
    out = []
    for name, original in unzip(one_chapter(strip_identifier(data), keep)):
        content = original
        if name.endswith(f"chapter{keep}.xhtml"):
            root = etree.fromstring(original, etree.XMLParser(resolve_entities=False))
            count = 0
            for paragraph in list(root.iter(f"{{{XHTML}}}p")):
                if count >= words:
                    paragraph.getparent().remove(paragraph)
                else:
                    count += len("".join(paragraph.itertext()).split())
            content = etree.tostring(root, encoding="utf-8", xml_declaration=True)
        if name.endswith((".jpg", ".png")):
            continue
        out.append((name, content))
    return zip_members(out)


def split_chapters(data: bytes) -> bytes:
    """Every chapter split into two files at its middle paragraph, and the package
    document's manifest and spine updated, as converters split long files."""
    out = []
    for name, original in unzip(data):
        match = re.search(r"chapter(\d+)\.xhtml$", name)
        if not match:
            out.append((name, original))
            continue
        root = etree.fromstring(original, etree.XMLParser(resolve_entities=False))
        second = etree.fromstring(original, etree.XMLParser(resolve_entities=False))
        for tree, keep_first in ((root, True), (second, False)):
            body = tree.find(f"{{{XHTML}}}body")
            children = list(body)
            half = len(children) // 2
            for child in children[half:] if keep_first else children[:half]:
                body.remove(child)
        out.append((name, etree.tostring(root, encoding="utf-8", xml_declaration=True)))
        out.append((name.replace(".xhtml", "b.xhtml"),
                    etree.tostring(second, encoding="utf-8", xml_declaration=True)))
    final = []
    for name, original in out:
        content = original
        if name.endswith(".opf"):
            text = original.decode()
            text = re.sub(r'(<item id="c(\d+)" href="chapter\d+)(\.xhtml"[^>]*/>)',
                          r'\1\3\n<item id="c\2b" href="chapter\2b\3', text)
            text = re.sub(r'<itemref idref="c(\d+)"/>',
                          r'<itemref idref="c\1"/><itemref idref="c\1b"/>', text)
            content = text.encode()
        final.append((name, content))
    return zip_members(final)
