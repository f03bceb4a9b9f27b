"""Tracing a suspect video or document: informed reads against the owner's works of
that kind, with each work's own key and master.

Images and recordings are first ranked by a perceptual fingerprint, so only the nearest
few are read. Videos and documents have none yet: their candidates are the owner's works
of the same format, newest first, at most `MAX_VIDEO_CANDIDATES` videos (an informed
video read decodes the copy and the master) and `MAX_DOCUMENT_CANDIDATES` documents
(a document read is cheap: its identifier is a string compare, its text and images a
parse). A larger catalogue is searched only that far; docs/WATERMARK.md says so. Every
read is keyed and checked, so another work's copy reads as no mark, never as a licence.

The suspect is checked once, before any candidate is read, so a damaged file is the
tracer's clear error whatever the catalogue holds. A read that finds a payload naming no
licence of its work does not end the search: each read under a wrong work's key has its
small chance of a checked payload (docs/WATERMARK.md bounds it per read), so over many
candidates only a payload that names an issued licence (a chance of about one in 2^64
per licence for a wrong key) stops it. Such a payload is reported only if no licence
is named.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

import watermark
from exchange.accounts.models import User
from exchange.catalogue.models import MediaType, Work
from exchange.catalogue.storage import master_abspath
from exchange.core.errors import ServiceError
from exchange.core.jsontypes import JSONValue
from exchange.licensing.services import package_get, package_keys
from exchange.tracing.findings import Found, Read, named
from exchange.tracing.models import TraceOutcome

MAX_VIDEO_CANDIDATES = 6
MAX_DOCUMENT_CANDIDATES = 40

#: reads a suspect with a work's key, informed by its master
Reader = Callable[[bytes, bytes, bytes], watermark.ExtractResult]


def video_by_watermark(owner: User, data: bytes) -> Found:
    """Read a suspect video against the owner's newest videos of the same container."""
    from watermark.video import extract_video_bytes, probe_video, sniff_video

    try:
        probe_video(data)
    except watermark.WatermarkError as error:
        raise ServiceError(_("The file could not be read as a video: %(error)s.")
                           % {"error": error}, code="unreadable_video", field="file") from error
    content_type = "video/webm" if sniff_video(data) == "WEBM" else "video/mp4"
    works = _candidates(owner, MediaType.VIDEO, MAX_VIDEO_CANDIDATES, content_type)
    return _search(works, data, lambda suspect, key, master: extract_video_bytes(
        suspect, key, reference=master))


def document_by_watermark(owner: User, data: bytes) -> Found:
    """Read a suspect PDF or EPUB against the owner's newest documents of that format."""
    check: Callable[[bytes], object]
    if data.startswith(b"%PDF-"):
        from watermark.document.pdf import check_pdf, extract_pdf_bytes

        content_type, reader, check = "application/pdf", extract_pdf_bytes, check_pdf
    else:
        from watermark.document.epub import check_epub, extract_epub_bytes

        content_type, reader, check = "application/epub+zip", extract_epub_bytes, check_epub
    try:
        check(data)
    except watermark.WatermarkError as error:
        raise ServiceError(_("The file could not be read: %(error)s.") % {"error": error},
                           code="unreadable_file", field="file") from error
    works = _candidates(owner, MediaType.DOCUMENT, MAX_DOCUMENT_CANDIDATES, content_type)
    return _search(works, data, lambda suspect, key, master: reader(
        suspect, key, reference=master))


def _candidates(owner: User, media_type: str, limit: int, content_type: str) -> list[Work]:
    return list(Work.objects.filter(owner=owner, media_type=media_type,
                                    content_type=content_type, package__isnull=False)
                .order_by("-created_at")[:limit])


def _search(works: list[Work], data: bytes, reader: Reader) -> Found:
    reads = []
    unnamed: Found | None = None
    for work in works:
        try:
            result = _read(work, data, reader)
        except watermark.WatermarkError:
            continue  # this master cannot be read (the suspect was checked above)
        if result is None:
            continue
        reads.append(Read(work, 0, result, {}))
        if result.found:
            found = named(reads[-1])
            if found[0] == TraceOutcome.MARKED:
                return found
            unnamed = unnamed or found
    if unnamed is not None:
        return unnamed
    details: dict[str, JSONValue] = {
        gettext_noop("works read"): len(works),
        "candidates": [{"work": str(r.work.pk), "title": r.work.title,
                        "score": round(r.result.score, 3)} for r in reads]}
    return TraceOutcome.UNKNOWN, None, [], details


def _read(work: Work, data: bytes, reader: Reader) -> watermark.ExtractResult | None:
    """The informed read with this work's key and master; None if the work has none."""
    package = package_get(work.pk)
    if package is None:
        return None
    try:
        master = master_abspath(work.master_path).read_bytes()
    except OSError:
        return None
    return reader(data, package_keys(package).watermark_key, master)
