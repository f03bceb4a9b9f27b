"""Trace a suspect copy to the licence it was delivered under (DESIGN, step 8).

In order of cost: an exact match first (the SHA-256 of a delivered copy is in its
receipt; the master's is on the work), then the owner's works of the copy's kind ranked
by a perceptual fingerprint (`perceptual`: a hash for images, sub-band bits for audio),
and an informed watermark read of the nearest few with each one's own key and master
(which undoes crop, scale and small rotation of a picture; excerpting, re-encoding, gain
and small speed changes of a recording). A mark read under a work's key names one
licence; a sealed work's copy is tested against every licence issued for it instead
(`sealed_reads`), which may accuse several. The read is keyed and checked, so a copy of
another work, or an unmarked one, reads as no mark rather than as somebody else's
licence.

Only a work's owner can trace copies of it: the search never looks past their works.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from PIL import Image

import watermark
from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.catalogue.models import MediaType, Work
from exchange.catalogue.storage import master_abspath
from exchange.core.errors import ServiceError
from exchange.core.jsontypes import JSONValue
from exchange.licensing.services import package_get, package_keys
from exchange.metering.models import Receipt
from exchange.tracing.findings import Found, Read, named
from exchange.tracing.media_reads import document_by_watermark, video_by_watermark
from exchange.tracing.models import MasterFingerprint, TraceOutcome, TraceReport
from exchange.tracing.perceptual import (
    AudioMatch,
    AudioPrint,
    audio_print,
    best_audio_match,
    hash_distance,
    perceptual_hash,
    suspect_prints,
)
from exchange.tracing.sealed_reads import sealed_by_accusation, work_is_sealed
from watermark.audio.codec import DecodedAudio, decode_audio, extract_audio_bytes, sniff_audio
from watermark.audio.extract import MIN_READ_SECONDS
from watermark.codec import READABLE_FORMATS
from watermark.errors import AudioTooLargeError, AudioTooShortError, UnsupportedAudioError
from watermark.planes import MIN_SUSPECT_PIXELS
from watermark.video import sniff_video

#: works given an informed watermark read, nearest perceptual hash first: a read that
#: finds no mark searches every alignment, and takes seconds
MAX_CANDIDATES = 3
#: of 64 bits, measured on the demo pictures (tracing docs): recompressed or resized
#: copies land 0-2 bits from their master, 2-degree rotations 2-10, 90% crops 6-12,
#: 75% crops 18-28; different pictures 24 and up, 32 typically. A candidate further
#: than this is not read; one this close is called the same picture even unmarked.
PLAUSIBLE_BITS = 30
SAME_PICTURE_BITS = 12
#: shares of the audio fingerprint's bits, measured on generated music and a real
#: recording (tests/exchange/test_tracing_audio.py; docs/WATERMARK.md): a marked excerpt
#: re-encoded as MP3 (128 or 64 kbit/s), turned down, mixed to mono or played 1% fast
#: lands 0.12-0.20 from its master; other music 0.45-0.49. A candidate further than
#: this is not read; one this close is called the same recording even unmarked.
PLAUSIBLE_AUDIO_BITS = 0.35
SAME_RECORDING_BITS = 0.30


def trace_copy(*, owner: User, data: bytes, name: str = "") -> TraceReport:
    """Find which of ``owner``'s works ``data`` is a copy of, and under which licence."""
    if not owner.is_rights_holder:
        raise ServiceError(_("Only rights holders can trace copies."), code="forbidden",
                           status_code=403)
    if not data:
        raise ServiceError(_("The file is empty."), code="empty_file", field="file")
    if len(data) > settings.MAX_TRACE_BYTES:
        raise ServiceError(_("The file is larger than %(mib)s MiB.")
                           % {"mib": settings.MAX_TRACE_BYTES // 2**20},
                           code="too_large", field="file", status_code=413)
    # A trace that finds no mark costs seconds of CPU: a fair use limit keeps one account
    # from tying up the platform's workers with them.
    recent = TraceReport.objects.filter(
        owner=owner, created_at__gte=timezone.now() - dt.timedelta(hours=1)).count()
    if recent >= settings.TRACES_PER_HOUR:
        raise ServiceError(_("You have traced %(count)s copies in the last hour, the most "
                             "allowed; try again later.") % {"count": recent},
                           code="rate_limited", status_code=429)
    digest = hashlib.sha256(data).hexdigest()
    found = _exact(owner, digest) or _by_medium(owner, data)
    outcome, work, licences, details = found
    with transaction.atomic():
        report = TraceReport.objects.create(
            owner=owner, suspect_name=name[:255], suspect_sha256=digest,
            suspect_size=len(data), outcome=outcome, work=work, details=details)
        report.licences.set(licences)
        audit_record(actor=owner, action="trace.run", target=report,
                     data={"outcome": outcome, "work": str(work.pk) if work else None,
                           "licences": [str(licence.pk) for licence in licences]})
    return report


def _by_medium(owner: User, data: bytes) -> Found:
    """The watermark search for the suspect's medium, told by its bytes."""
    if _is_audio(data):
        return _audio_by_watermark(owner, data)
    if sniff_video(data) is not None:
        return video_by_watermark(owner, data)
    if data.startswith((b"%PDF-", b"PK\x03\x04")):
        return document_by_watermark(owner, data)
    return _by_watermark(owner, data)


def _exact(owner: User, digest: str) -> Found | None:
    receipts = Receipt.objects.filter(output_sha256=digest, licence__work__owner=owner)
    marked = list(receipts.filter(marked=True).select_related("licence__work")
                  .order_by("received_at"))
    if marked:
        # A marked copy's bytes are its licence's alone.
        return (TraceOutcome.DELIVERED_COPY, marked[0].licence.work,
                [receipt.licence for receipt in marked],
                {gettext_noop("method"):
                 gettext_noop("sha256 of a marked delivered copy, from its receipt")})
    # An unmarked delivery is the master's own bytes, the same for every buyer: it names
    # nobody, so only the number of such deliveries is reported.
    unmarked = receipts.filter(marked=False)
    master = Work.objects.filter(owner=owner, sha256=digest).first()
    if master is None:
        first = unmarked.select_related("licence__work").first()
        master = first.licence.work if first is not None else None
    if master is not None:
        return TraceOutcome.MASTER, master, [], {
            gettext_noop("method"): gettext_noop("sha256 of the master"),
            gettext_noop("unmarked deliveries of these bytes"): unmarked.count()}
    return None


def _by_watermark(owner: User, data: bytes) -> Found:
    try:
        suspect = watermark.open_image(data, formats=READABLE_FORMATS,
                                       min_pixels=MIN_SUSPECT_PIXELS)
    except watermark.ImageTooLargeError as error:
        raise ServiceError(_("The image is too large to trace: %(error)s.") % {"error": error},
                           code="too_large",
                           field="file", status_code=413) from error
    except watermark.CorruptImageError as error:
        raise ServiceError(_("The file could not be read as an image: %(error)s.")
                           % {"error": error},
                           code="unreadable_image", field="file") from error
    except watermark.UnsupportedImageError as error:
        return TraceOutcome.UNKNOWN, None, [], {
            gettext_noop("reason"): f"not an exact copy of any of your works, and not an image "
                                    f"({error}) that could be recognised after changes"}
    suspect_hash = perceptual_hash(suspect)
    ranked = sorted(((hash_distance(suspect_hash, h), work) for work, h in _fingerprints(owner)),
                    key=lambda pair: pair[0])
    compared: list[JSONValue] = []
    unnamed: dict[object, Found] = {}  # sealed works tested with nobody accused
    for distance, work in [pair for pair in ranked if pair[0] <= PLAUSIBLE_BITS][:MAX_CANDIDATES]:
        likeness: dict[str, JSONValue] = {
            gettext_noop("perceptual distance to the master (of 64 bits)"): distance}
        if work_is_sealed(work):
            accused = _sealed_candidate(work, data, likeness, distance,
                                        compared=compared, unnamed=unnamed)
            if accused is not None:
                return accused
            continue
        result = _read(work, suspect)
        if result is None:
            continue
        read = Read(work, distance, result, likeness)
        compared.append({"work": str(work.pk), "title": work.title, "distance": distance,
                         "score": round(result.score, 3)})
        if result.found:
            return named(read)
    nearest = ranked[0] if ranked else None
    details: dict[str, JSONValue] = {"candidates": compared}
    if nearest is not None and nearest[0] <= SAME_PICTURE_BITS:
        if nearest[1].pk in unnamed:
            outcome, _work, _licences, sealed_details = unnamed[nearest[1].pk]
            return outcome, nearest[1], [], {**sealed_details, **details}
        return TraceOutcome.NO_MARK, nearest[1], [], details
    return TraceOutcome.UNKNOWN, None, [], details


def _sealed_candidate(work: Work, data: bytes, likeness: dict[str, JSONValue],
                      distance: JSONValue, *, compared: list[JSONValue],
                      unnamed: dict[object, Found]) -> Found | None:
    """Accuse the licences of a sealed candidate work: the finding if it names one; else
    None, with the work noted among those compared (and kept if it was read at all)."""
    tested = sealed_by_accusation(work, data, likeness)
    if tested is None:
        return None
    found, best = tested
    compared.append({"work": str(work.pk), "title": work.title, "distance": distance,
                     "score": None if best is None else round(best, 3)})
    if found[0] == TraceOutcome.MARKED:
        return found
    unnamed[work.pk] = found
    return None


def _fingerprints(owner: User) -> list[tuple[Work, int]]:
    """Every packaged image work of ``owner`` with its master's perceptual hash."""
    works = Work.objects.filter(owner=owner, media_type=MediaType.IMAGE,
                                package__isnull=False).select_related("fingerprint")
    pairs = []
    for work in works:
        stored = master_fingerprint(work)
        if stored is not None:
            pairs.append((work, int(stored.perceptual_hash, 16)))
    return pairs


def master_fingerprint(work: Work) -> MasterFingerprint | None:
    """The master's perceptual fingerprint (an image's hash, an audio master's bits),
    made once and kept: when the work is packaged (or, for a work packaged before it had
    one, on the first trace that needs it), and again if the audio fingerprint's layout
    has changed since.

    None if the watermark library cannot read the master (or it is neither an image nor
    audio): such a work can be traced by exact hash only.
    """
    try:
        stored: MasterFingerprint | None = work.fingerprint
    except MasterFingerprint.DoesNotExist:
        stored = None
    if stored is not None and (work.media_type != MediaType.AUDIO
                               or AudioPrint.from_bytes(bytes(stored.audio_print))):
        return stored
    try:
        if work.media_type == MediaType.IMAGE:
            fields: dict[str, object] = {
                "perceptual_hash": f"{perceptual_hash(_master_image(work)):016x}"}
        elif work.media_type == MediaType.AUDIO:
            master = decode_audio(master_abspath(work.master_path).read_bytes())
            fields = {"audio_print": audio_print(master.samples, master.sample_rate).to_bytes()}
        else:
            return None
    except (OSError, watermark.WatermarkError):
        return None
    stored, _created = MasterFingerprint.objects.update_or_create(work=work, defaults=fields)
    return stored


def _is_audio(data: bytes) -> bool:
    """Whether the file's bytes begin as a WAV, FLAC, Ogg or MP3 file does."""
    try:
        sniff_audio(data)
    except UnsupportedAudioError:
        return False
    return True


def _audio_by_watermark(owner: User, data: bytes) -> Found:
    """Rank ``owner``'s audio works by fingerprint, then read the nearest few informed."""
    suspect = _suspect_audio(data)
    copies = suspect_prints(suspect.samples, suspect.sample_rate)
    ranked: list[tuple[AudioMatch, Work]] = []
    for work, stored in _audio_fingerprints(owner):
        match = best_audio_match(copies, stored)
        if match is not None:
            ranked.append((match, work))
    ranked.sort(key=lambda pair: pair[0].bit_error_rate)
    compared: list[JSONValue] = []
    unnamed: dict[object, Found] = {}  # sealed works tested with nobody accused
    for match, work in [pair for pair in ranked
                        if pair[0].bit_error_rate <= PLAUSIBLE_AUDIO_BITS][:MAX_CANDIDATES]:
        distance = round(match.bit_error_rate, 3)
        if work_is_sealed(work):
            accused = _sealed_candidate(work, data, _likeness(match), distance,
                                        compared=compared, unnamed=unnamed)
            if accused is not None:
                return accused
            continue
        result = _read_audio(work, data)
        if result is None:
            continue
        read = Read(work, distance, result, _likeness(match))
        compared.append({"work": str(work.pk), "title": work.title, "distance": distance,
                         "score": round(result.score, 3)})
        if result.found:
            return named(read)
    details: dict[str, JSONValue] = {"candidates": compared}
    if ranked and ranked[0][0].bit_error_rate <= SAME_RECORDING_BITS:
        nearest = ranked[0][1]
        if nearest.pk in unnamed:
            _outcome, _work, _licences, sealed_details = unnamed[nearest.pk]
            return TraceOutcome.NO_MARK, nearest, [], {**sealed_details, **details}
        details.update(_likeness(ranked[0][0]))
        return TraceOutcome.NO_MARK, nearest, [], details
    return TraceOutcome.UNKNOWN, None, [], details


def _suspect_audio(data: bytes) -> DecodedAudio:
    """The suspect's samples, or a clear error: it sniffed as audio, so a file that does
    not decode is damaged, not some other kind of file."""
    try:
        suspect = decode_audio(data)
    except AudioTooLargeError as error:
        raise ServiceError(_("The recording is too large to trace: %(error)s.") % {"error": error},
                           code="too_large", field="file", status_code=413) from error
    except AudioTooShortError as error:
        raise ServiceError(_("The recording is too short to trace: %(error)s.") % {"error": error},
                           code="too_short", field="file") from error
    except UnsupportedAudioError as error:
        raise ServiceError(_("The file could not be read as audio: %(error)s.") % {"error": error},
                           code="unreadable_audio", field="file") from error
    if suspect.seconds < MIN_READ_SECONDS:
        raise ServiceError(
            _("The recording is %(seconds)s s long, too short to trace: a watermark is read "
              "from at least %(minimum)s s of audio.")
            % {"seconds": f"{suspect.seconds:.1f}", "minimum": f"{MIN_READ_SECONDS:g}"},
            code="too_short", field="file")
    return suspect


def _likeness(match: AudioMatch) -> dict[str, JSONValue]:
    minutes, seconds = divmod(max(0.0, match.master_seconds), 60)
    likeness: dict[str, JSONValue] = {
        gettext_noop("fingerprint bits differing from the master"): f"{match.bit_error_rate:.0%}",
        gettext_noop("the copy starts in the master at"): f"{int(minutes)}:{seconds:04.1f}",
    }
    if match.speed != 1.0:
        likeness[gettext_noop("speed of the copy (fingerprint)")] = f"{match.speed - 1:+.1%}"
    return likeness


def _audio_fingerprints(owner: User) -> list[tuple[Work, AudioPrint]]:
    """Every packaged audio work of ``owner`` with its master's fingerprint."""
    works = Work.objects.filter(owner=owner, media_type=MediaType.AUDIO,
                                package__isnull=False).select_related("fingerprint")
    pairs = []
    for work in works:
        stored = master_fingerprint(work)
        found = AudioPrint.from_bytes(bytes(stored.audio_print)) if stored else None
        if found is not None:
            pairs.append((work, found))
    return pairs


def _read_audio(work: Work, suspect: bytes) -> watermark.ExtractResult | None:
    try:
        master = master_abspath(work.master_path).read_bytes()
        package = package_get(work.pk)
        if package is None:
            return None
        keys = package_keys(package)
        return extract_audio_bytes(suspect, keys.watermark_key, reference=master)
    except (OSError, watermark.WatermarkError):
        return None


def _master_image(work: Work) -> Image.Image:
    data = master_abspath(work.master_path).read_bytes()
    return watermark.open_image(data, formats=READABLE_FORMATS)


def _read(work: Work, suspect: Image.Image) -> watermark.ExtractResult | None:
    try:
        master = _master_image(work)
        package = package_get(work.pk)
        if package is None:
            return None
        keys = package_keys(package)
        return watermark.extract(suspect, keys.watermark_key, reference=master)
    except (OSError, watermark.WatermarkError):
        return None
