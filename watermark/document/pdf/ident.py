"""The per-copy identifier in the document's structure: document info, XMP and trailer /ID.

The token of `watermark.document.identifier` goes into the document information dictionary
and every page dictionary (`/PeermarkCopy`, so pages extracted into a new file keep it), and
into the XMP metadata (`peermark:copy`); its 14 bytes (8 masked payload
bytes and a 6-byte keyed check) also open the trailer's /ID, padded to 16 bytes with a keyed
filler, so a copy whose metadata was rewritten may still carry it in its /ID. qpdf keeps the
first /ID string on re-save; Ghostscript's pdfwrite makes a new one and copies the document
info (not custom XMP). Rewriting or dropping the metadata and the /ID removes this evidence,
which is why the text and image marks exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

import pikepdf
from lxml import etree

from watermark.document.identifier import PREFIX, copy_identifier, find_identifiers, read_identifier

INFO_KEY: Final = "/PeermarkCopy"
XMP_NAMESPACE: Final = "https://peermark.invalid/ns/copy/1.0/"
XMP_PREFIX: Final = "peermark"
_ID_LABEL: Final = b"peermark.document.v1.trailer-id"
_TOKEN_BYTES: Final = 14
_XMP_ERRORS: Final = (etree.XMLSyntaxError, ValueError, KeyError, TypeError, AttributeError,
                      pikepdf.PdfError)


def trailer_id(key: bytes, payload: int) -> bytes:
    """The 16-byte first /ID string of a copy: the token's bytes and a keyed filler."""
    token = copy_identifier(key, payload)[len(PREFIX):].upper()
    raw = base64.b32decode(token + "=" * (-len(token) % 8))
    filler = hmac.new(key, _ID_LABEL + raw, hashlib.sha256).digest()
    return raw + filler[: 16 - _TOKEN_BYTES]


def write_identifier(pdf: pikepdf.Pdf, key: bytes, payload: int) -> None:
    """Put the token into the info dictionary, the XMP and the trailer /ID."""
    token = copy_identifier(key, payload)
    first = trailer_id(key, payload)
    pdf.trailer.ID = pikepdf.Array([pikepdf.String(first), pikepdf.String(first)])
    pdf.docinfo[INFO_KEY] = pikepdf.String(token)
    for page in pdf.pages:
        page.obj[INFO_KEY] = pikepdf.String(token)
    pikepdf.models.metadata.PdfMetadata.register_xml_namespace(XMP_NAMESPACE, XMP_PREFIX)
    try:
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            meta[f"{XMP_PREFIX}:copy"] = token
    except _XMP_ERRORS:
        # A master whose XMP does not parse keeps it as it was; the info dictionary and
        # the /ID still carry the token.
        return


def read_identifier_in(pdf: pikepdf.Pdf, key: bytes) -> list[int]:
    """Payloads named by tokens of this key in the info dictionary, the XMP and the /ID."""
    texts: list[str] = []
    try:
        for name, value in pdf.docinfo.items():
            texts.append(f"{name} {value}")
    except (pikepdf.PdfError, ValueError, TypeError, AttributeError):
        pass
    try:
        for page in pdf.pages:
            entry = page.obj.get(INFO_KEY)
            if isinstance(entry, pikepdf.String):
                texts.append(str(entry))
    except (pikepdf.PdfError, ValueError, TypeError, AttributeError):
        pass
    try:
        metadata = pdf.Root.get("/Metadata")
        if isinstance(metadata, pikepdf.Stream):
            texts.append(metadata.read_bytes().decode("utf-8", "replace"))
    except (pikepdf.PdfError, ValueError, TypeError, AttributeError):
        pass
    found: list[int] = []
    for text in texts:
        for token in find_identifiers(text):
            payload = read_identifier(token, key)
            if payload is not None:
                found.append(payload)
    try:
        ids = pdf.trailer.get("/ID")
        if isinstance(ids, pikepdf.Array):
            for item in ids:
                raw = bytes(item)[:_TOKEN_BYTES]
                if len(raw) == _TOKEN_BYTES:
                    token = PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=").lower()
                    payload = read_identifier(token, key)
                    if payload is not None:
                        found.append(payload)
    except (pikepdf.PdfError, ValueError, TypeError):
        pass
    return found
