"""The structure of an EPUB: container, package document, content documents, DRM.

`open_book` turns archive bytes into a `Book` (members, the package document's tree, the
spine's XHTML content documents and the markable images) or raises a clear error:
`CorruptDocumentError` for what is not a whole EPUB, `UnsupportedDocumentError` for DRM
or a book without content documents, `DocumentTooLargeError` past the limits. XML is
parsed with lxml without network access, DTD loading or entity expansion.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from lxml import etree

from watermark.document.epub import limits
from watermark.document.epub.archive import MIMETYPE, Member, read_archive
from watermark.errors import CorruptDocumentError, DocumentTooLargeError, UnsupportedDocumentError

OPF_NS: Final = "http://www.idpf.org/2007/opf"
DC_NS: Final = "http://purl.org/dc/elements/1.1/"
XHTML_NS: Final = "http://www.w3.org/1999/xhtml"
CONTAINER_NS: Final = "urn:oasis:names:tc:opendocument:xmlns:container"
ENC_NS: Final = "http://www.w3.org/2001/04/xmlenc#"
CONTAINER: Final = "META-INF/container.xml"
ENCRYPTION: Final = "META-INF/encryption.xml"
RIGHTS: Final = "META-INF/rights.xml"
EPUB_MIMETYPE: Final = b"application/epub+zip"
_DECLARATION: Final = re.compile(rb"<\?xml[^>]*\?>")
_STANDALONE: Final = re.compile(rb"""standalone\s*=\s*["'](yes|no)["']""")
#: font obfuscation (IDPF's and Adobe's) hides fonts from copying; it is not DRM on the text
FONT_OBFUSCATION: Final = frozenset({"http://www.idpf.org/2008/embedding",
                                     "http://ns.adobe.com/pdf/enc#RC"})
XHTML_TYPES: Final = frozenset({"application/xhtml+xml"})
#: images the image mark writes in their own format (watermark.codec)
IMAGE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/webp"})

Element: TypeAlias = Any
"""An lxml element (`etree.Element`'s kind). lxml ships no type information and names
its element classes privately, so annotations name this alias instead."""
ElementTree: TypeAlias = Any
"""An lxml document tree, as `etree.parse` and `etree.fromstring(...).getroottree()` give."""


@dataclass(frozen=True)
class EpubInfo:
    """What `check_epub` found: the spine's XHTML content documents, the raster images
    the image mark can carry (PNG, JPEG, WebP), and the characters of body text (not
    counting whitespace) in the content documents."""

    documents: int
    images: int
    characters: int


@dataclass
class Book:
    """An opened EPUB: its members in archive order and what the package document says."""

    members: list[Member]
    opf_path: str
    opf: ElementTree
    documents: list[str]
    images: list[str]
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.index = {member.name: position for position, member in enumerate(self.members)}

    def data(self, name: str) -> bytes:
        return self.members[self.index[name]].data


def parse_xml(data: bytes, what: str, *, recover: bool = False) -> ElementTree:
    """Parse XML without network, DTDs or entity expansion; `CorruptDocumentError` if it is
    not well formed (unless `recover`, which reads what it can, for suspect copies)."""
    if len(data) > limits.MAX_XML_BYTES:
        raise DocumentTooLargeError(f"{what} is {len(data)} bytes (limit {limits.MAX_XML_BYTES})")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, strip_cdata=False, recover=recover)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as error:
        raise CorruptDocumentError(f"{what} is not well-formed XML: {error}") from error
    if root is None:
        raise CorruptDocumentError(f"{what} has no XML content")
    return root.getroottree()


def resolve(base: str, href: str) -> str | None:
    """The archive name `href` names relative to the member `base`, or None (remote or
    outside the container)."""
    parts = urllib.parse.urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(base),
                                             urllib.parse.unquote(parts.path)))
    if path.startswith(("../", "/")) or path == "..":
        return None
    return path


def _rootfile(members: dict[str, Member]) -> str:
    if CONTAINER not in members:
        raise CorruptDocumentError(f"no {CONTAINER}")
    tree = parse_xml(members[CONTAINER].data, CONTAINER)
    for rootfile in tree.iter(f"{{{CONTAINER_NS}}}rootfile"):
        media = rootfile.get("media-type", "application/oebps-package+xml")
        path = rootfile.get("full-path")
        if path and media == "application/oebps-package+xml":
            return str(path)
    raise CorruptDocumentError(f"{CONTAINER} names no package document")


def _refuse_drm(members: dict[str, Member], protected: set[str]) -> None:
    if RIGHTS in members:
        raise UnsupportedDocumentError(f"the EPUB carries DRM ({RIGHTS})")
    if ENCRYPTION not in members:
        return
    tree = parse_xml(members[ENCRYPTION].data, ENCRYPTION)
    for encrypted in tree.iter(f"{{{ENC_NS}}}EncryptedData"):
        method = encrypted.find(f"{{{ENC_NS}}}EncryptionMethod")
        algorithm = method.get("Algorithm", "") if method is not None else ""
        reference = encrypted.find(f".//{{{ENC_NS}}}CipherReference")
        uri = reference.get("URI", "") if reference is not None else ""
        if algorithm not in FONT_OBFUSCATION:
            raise UnsupportedDocumentError(
                f"the EPUB is encrypted (DRM): {uri or 'a resource'} with {algorithm or '?'}")
        target = resolve("", uri)
        if target in protected:
            raise UnsupportedDocumentError(f"a content resource is obfuscated: {uri}")


def open_book(data: bytes) -> Book:
    """Open and check an EPUB (see the module docstring for what is refused)."""
    members_list = read_archive(data)
    members = {member.name: member for member in members_list}
    if MIMETYPE not in members:
        raise CorruptDocumentError("no mimetype member: not an EPUB")
    if members[MIMETYPE].data.strip() != EPUB_MIMETYPE:
        raise CorruptDocumentError("the mimetype member does not say application/epub+zip")
    opf_path = _rootfile(members)
    if opf_path not in members:
        raise CorruptDocumentError(f"the package document {opf_path!r} is missing")
    opf = parse_xml(members[opf_path].data, opf_path)
    package = opf.getroot()
    if package.tag != f"{{{OPF_NS}}}package":
        raise CorruptDocumentError(f"{opf_path} is not an OPF package document")
    manifest = package.find(f"{{{OPF_NS}}}manifest")
    spine = package.find(f"{{{OPF_NS}}}spine")
    if package.find(f"{{{OPF_NS}}}metadata") is None or manifest is None or spine is None:
        raise CorruptDocumentError(f"{opf_path} lacks metadata, manifest or spine")
    items: dict[str, tuple[str | None, str]] = {}
    for item in manifest.iter(f"{{{OPF_NS}}}item"):
        href = item.get("href")
        items[item.get("id", "")] = (resolve(opf_path, href) if href else None,
                                     item.get("media-type", ""))
    documents: list[str] = []
    for itemref in spine.iter(f"{{{OPF_NS}}}itemref"):
        path, media = items.get(itemref.get("idref", ""), (None, ""))
        if media not in XHTML_TYPES or path is None or path in documents:
            continue
        if path not in members:
            raise CorruptDocumentError(f"the spine names {path!r}, which is not in the archive")
        documents.append(path)
    order = {member.name: position for position, member in enumerate(members_list)}
    images = sorted({path for path, media in items.values()
                     if media in IMAGE_TYPES and path is not None and path in members},
                    key=order.__getitem__)
    _refuse_drm(members, set(documents) | set(images) | {opf_path})
    if not documents:
        raise UnsupportedDocumentError("the EPUB has no XHTML content document in its spine")
    return Book(members_list, opf_path, opf, documents, images)


def check_epub(data: bytes) -> EpubInfo:
    """Check that `data` is an EPUB this library marks, and say what it holds.

    Raises `CorruptDocumentError` (not a zip, truncated, no mimetype, container.xml or
    package document, malformed XML), `UnsupportedDocumentError` (DRM: an encryption.xml
    naming anything but obfuscated fonts, a rights.xml; no content documents) or
    `DocumentTooLargeError` (zip bombs and the other limits in `limits`).
    """
    from watermark.document.epub.text import visible_characters

    book = open_book(data)
    characters = 0
    for name in book.documents:
        characters += visible_characters(parse_xml(book.data(name), name))
    return EpubInfo(len(book.documents), len(book.images), characters)


def serialise(tree: ElementTree, original: bytes) -> bytes:
    """`tree` as bytes in the encoding of `original`, with an XML declaration if it had one
    and its standalone flag only if it had one (lxml keeps the DOCTYPE, comments and
    processing instructions)."""
    encoding = tree.docinfo.encoding or "UTF-8"
    head = original.removeprefix(b"\xef\xbb\xbf").lstrip()
    declaration = _DECLARATION.match(head)
    if declaration is None:
        return bytes(etree.tostring(tree, encoding=encoding, xml_declaration=False))
    standalone = _STANDALONE.search(declaration.group())
    if standalone is None:
        return bytes(etree.tostring(tree, encoding=encoding, xml_declaration=True))
    return bytes(etree.tostring(tree, encoding=encoding, xml_declaration=True,
                                standalone=standalone.group(1) == b"yes"))
