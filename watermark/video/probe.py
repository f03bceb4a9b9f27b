"""What a video is, from its container: format, size, rate, length and codecs, checked
against the limits before a single frame is marked.

Untrusted bytes meet FFmpeg's demuxers and decoders here, so the checks run in the order
that costs least: the magic bytes (`sniff_video`), a scan of the container's own
structure for encryption (MP4 boxes, WebM elements), then the demuxer's header (codecs,
size, rate, duration: `VideoTooLargeError` before decoding anything), then one decoded
frame (`CorruptVideoError` if none comes out).
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final

from watermark.errors import (
    CorruptVideoError,
    UnsupportedVideoError,
    VideoTooLargeError,
    VideoTooShortError,
    WatermarkError,
)
from watermark.video import limits

if TYPE_CHECKING:
    import av.container

VIDEO_FORMATS: Final = ("MP4", "WEBM")

VIDEO_CODECS: Final = {"MP4": ("h264",), "WEBM": ("vp9", "vp8")}
AUDIO_CODECS: Final = {"MP4": ("aac",), "WEBM": ("opus", "vorbis")}

_MP4_ENCRYPTED: Final = (b"encv", b"enca", b"pssh", b"tenc", b"sinf", b"senc")
_MP4_CONTAINERS: Final = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf",
                          b"mvex", b"edts", b"udta"}
_EBML_MAGIC: Final = b"\x1a\x45\xdf\xa3"
_SEGMENT: Final = 0x18538067
_TRACKS: Final = 0x1654AE6B
_CLUSTER: Final = 0x1F43B675
_TRACK_ENTRY: Final = 0xAE
_CONTENT_ENCODINGS: Final = 0x6D80
_CONTENT_ENCODING: Final = 0x6240
_CONTENT_ENCRYPTION: Final = 0x5035
_DOC_TYPE: Final = 0x4282
PIXEL_FORMATS: Final = ("yuv420p", "yuvj420p")
"""8-bit 4:2:0 (video or full range): the only pictures marked. Anything else would need a
conversion by swscale, whose SIMD paths differ between CPUs, so the copy's bytes would
depend on the machine (the audit recomputes copies and compares their SHA-256)."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video, checked against the limits."""

    format: str
    width: int
    height: int
    fps: float
    frames: int
    """Estimated from the container (its frame count, else duration x rate)."""
    duration_seconds: float
    video_codec: str
    audio_codec: str | None
    bit_rate: int | None
    """The container's overall bit rate, where it states one."""


@dataclass(frozen=True)
class LengthGuard:
    """Stops a decode that runs past the length its container states.

    The limits are checked from the header (`streams_info`); a file whose header says
    10 s but holds hours of frames would otherwise be decoded until its data ends.
    `check` refuses (`VideoTooLargeError`) once more than `frames` x 1.1 + one second of
    frames have decoded, or a frame lies more than a tenth of the stated duration plus
    one second past it, or past `limits.MAX_SECONDS` whatever the header says.
    """

    frames: int
    """Frames the container states (0: unknown)."""
    fps: float
    seconds: float
    """Duration the container states (0: unknown)."""

    @classmethod
    def of_info(cls, info: VideoInfo) -> LengthGuard:
        return cls(info.frames, info.fps, info.duration_seconds)

    @classmethod
    def of_stream(cls, container: av.container.InputContainer, video: Any) -> LengthGuard:
        """From a stream not probed yet (a master given to the informed read)."""
        rate = fps_of(video)
        fps = min(float(rate), limits.MAX_FPS) if rate is not None else limits.MAX_FPS
        seconds = _duration(container, video)
        frames = int(video.frames) if video.frames else round(seconds * fps)
        return cls(max(0, frames), fps, seconds)

    @property
    def max_frames(self) -> float:
        ceiling = limits.MAX_SECONDS * max(self.fps, 1.0) * 1.1 + self.fps
        return min(ceiling, self.frames * 1.1 + self.fps) if self.frames > 0 else ceiling

    @property
    def max_seconds(self) -> float:
        ceiling = limits.MAX_SECONDS * 1.1 + 1.0
        stated = self.seconds * 1.1 + 1.0 if self.seconds > 0 else math.inf
        return min(ceiling, stated)

    def check(self, count: int, seconds: float | None) -> None:
        """`count` frames decoded so far, the last `seconds` after the first (None if
        unknown): `VideoTooLargeError` if either is past what the container states."""
        if count > self.max_frames:
            raise VideoTooLargeError(
                f"more than {count - 1} frames decode, but the container states "
                f"{self.frames} ({self.seconds:.2f} s): refused rather than decoded to the end")
        if seconds is not None and seconds > self.max_seconds:
            raise VideoTooLargeError(
                f"a frame at {seconds:.2f} s, but the container states {self.seconds:.2f} s "
                f"(limit {limits.MAX_SECONDS:.0f} s): refused rather than decoded to the end")


def sniff_video(data: bytes) -> str | None:
    """"MP4" or "WEBM" from the first bytes, else None (a Matroska file that is not WebM
    too: its codecs are not limited to what is marked)."""
    head = bytes(data[:64])
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "MP4"
    if head.startswith(_EBML_MAGIC):
        doc_type = _ebml_doc_type(bytes(data[:4096]))
        return "WEBM" if doc_type == b"webm" else None
    return None


def _mp4_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each box in data[start:end]; stops at damage."""
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        header = 8
        if size == 1:
            if position + 16 > end:
                return
            size = struct.unpack(">Q", data[position + 8 : position + 16])[0]
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            yield kind, position + header, end
            return
        yield kind, position + header, position + size
        position += size


def _mp4_encrypted(data: bytes) -> bool:
    """True if the MP4's structure (not its media data) names an encryption box.

    The sample descriptions are searched as bytes (their layout differs per codec), the
    rest box by box; 'mdat' is never searched, so no picture can look encrypted.
    """
    pending = [(0, len(data))]
    while pending:
        start, end = pending.pop()
        for kind, body, stop in _mp4_boxes(data, start, end):
            if kind in _MP4_ENCRYPTED:
                return True
            if kind == b"stsd" and any(tag in data[body:stop] for tag in _MP4_ENCRYPTED):
                return True
            if kind in _MP4_CONTAINERS:
                pending.append((body, stop))
    return False


def _vint(data: bytes, position: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """An EBML variable-length integer at `position`: (value, length), None if damaged."""
    if position >= len(data):
        return None
    first = data[position]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or position + length > len(data):
        return None
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[position + 1 : position + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        value = -1  # unknown size: to the end of the parent
    return value, length


def _ebml_children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, body start, body end) of each EBML element in data[start:end]."""
    position = start
    while position < end:
        ident = _vint(data, position, keep_marker=True)
        if ident is None:
            return
        size = _vint(data, position + ident[1], keep_marker=False)
        if size is None:
            return
        body = position + ident[1] + size[1]
        stop = end if size[0] < 0 else min(end, body + size[0])
        yield ident[0], body, stop
        if size[0] < 0:
            return
        position = stop


def _ebml_doc_type(data: bytes) -> bytes | None:
    for ident, body, stop in _ebml_children(data, 0, len(data)):
        if ident == int.from_bytes(_EBML_MAGIC, "big"):
            for child, child_body, child_stop in _ebml_children(data, body, stop):
                if child == _DOC_TYPE:
                    return data[child_body:child_stop]
        return None
    return None


def _webm_encrypted(data: bytes) -> bool:
    """True if a WebM track declares ContentEncryption (in its ContentEncodings)."""
    for ident, body, stop in _ebml_children(data, 0, len(data)):
        if ident != _SEGMENT:
            continue
        for child, child_body, child_stop in _ebml_children(data, body, stop):
            if child == _CLUSTER:
                return False
            if child != _TRACKS:
                continue
            for entry, entry_body, entry_stop in _ebml_children(data, child_body, child_stop):
                if entry == _TRACK_ENTRY and _track_encrypted(data, entry_body, entry_stop):
                    return True
    return False


def _track_encrypted(data: bytes, start: int, end: int) -> bool:
    for ident, body, stop in _ebml_children(data, start, end):
        if ident != _CONTENT_ENCODINGS:
            continue
        for encoding, encoding_body, encoding_stop in _ebml_children(data, body, stop):
            if encoding != _CONTENT_ENCODING:
                continue
            for item, _, _ in _ebml_children(data, encoding_body, encoding_stop):
                if item == _CONTENT_ENCRYPTION:
                    return True
    return False


def open_input(data: bytes) -> av.container.InputContainer:
    """The demuxer on `data`, or `CorruptVideoError` if FFmpeg cannot read its header."""
    import av

    try:
        return av.open(io.BytesIO(data), "r")
    except (av.FFmpegError, ValueError, OSError) as error:
        raise CorruptVideoError(f"the video's container cannot be read: {error}") from error


def fps_of(stream: Any) -> Fraction | None:
    """The stream's frame rate: the average rate, else the guessed one, else None."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return Fraction(rate)
    return None


def check_format(data: bytes) -> str:
    """The sniffed format after the structural encryption scan, or a clear refusal."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UnsupportedVideoError(f"expected bytes, not {type(data).__name__}")
    if len(data) == 0:
        raise CorruptVideoError("the video is empty (0 bytes)")
    if len(data) > limits.MAX_INPUT_BYTES:
        raise VideoTooLargeError(f"{len(data)} bytes is more than the limit of "
                                 f"{limits.MAX_INPUT_BYTES}")
    fmt = sniff_video(bytes(data[:4096]))
    if fmt is None:
        raise UnsupportedVideoError("not an MP4 or WebM video (by its first bytes)")
    raw = bytes(data)
    if (_mp4_encrypted(raw) if fmt == "MP4" else _webm_encrypted(raw)):
        raise UnsupportedVideoError("the video has an encrypted track: it cannot be marked")
    return fmt


def streams_info(container: av.container.InputContainer, fmt: str) -> VideoInfo:
    """Codecs, size, rate and length from the demuxer's header, checked against limits."""
    videos = [s for s in container.streams if s.type == "video"]
    audios = [s for s in container.streams if s.type == "audio"]
    if not videos:
        raise UnsupportedVideoError("the file has no video stream")
    if len(videos) > 1 or len(audios) > 1:
        raise UnsupportedVideoError(
            f"{len(videos)} video and {len(audios)} audio streams: one of each at most "
            "is marked, and no stream is dropped silently")
    video = videos[0]
    audio = audios[0] if audios else None
    codec = video.codec_context.name
    if codec not in VIDEO_CODECS[fmt]:
        raise UnsupportedVideoError(
            f"{fmt} video in {codec!r}: only {', '.join(VIDEO_CODECS[fmt])} is marked")
    audio_codec = audio.codec_context.name if audio is not None else None
    if audio_codec is not None and audio_codec not in AUDIO_CODECS[fmt]:
        raise UnsupportedVideoError(
            f"{fmt} audio in {audio_codec!r}: only {', '.join(AUDIO_CODECS[fmt])} is marked")
    context: Any = video.codec_context
    width, height = int(context.width), int(context.height)
    if width <= 0 or height <= 0:
        raise CorruptVideoError("the video stream states no picture size")
    if max(width, height) > limits.MAX_WIDTH or min(width, height) > limits.MAX_HEIGHT:
        raise VideoTooLargeError(f"{width}x{height} is larger than the limit of "
                                 f"{limits.MAX_WIDTH}x{limits.MAX_HEIGHT}")
    if min(width, height) < limits.MIN_SIDE:
        raise UnsupportedVideoError(f"{width}x{height} is too small to mark: at least "
                                    f"{limits.MIN_SIDE} pixels on each side")
    pixels = getattr(context.format, "name", None)
    if pixels is not None and pixels not in PIXEL_FORMATS:
        raise UnsupportedVideoError(f"pixel format {pixels!r}: 8-bit 4:2:0 only "
                                    f"({', '.join(PIXEL_FORMATS)})")
    if width % 2 or height % 2:
        raise UnsupportedVideoError(f"{width}x{height}: odd picture sides cannot be kept "
                                    "in 4:2:0 video")
    rate = fps_of(video)
    if rate is None:
        raise CorruptVideoError("the video stream states no frame rate")
    fps = float(rate)
    if fps > limits.MAX_FPS:
        raise VideoTooLargeError(f"{fps:.1f} frames per second is more than the limit of "
                                 f"{limits.MAX_FPS:.0f}")
    duration = _duration(container, video)
    if duration > limits.MAX_SECONDS:
        raise VideoTooLargeError(f"{duration:.0f} s is longer than the limit of "
                                 f"{limits.MAX_SECONDS:.0f} s")
    frames = int(video.frames) if video.frames else round(duration * fps)
    if frames < limits.MIN_FRAMES or duration < limits.MIN_SECONDS:
        raise VideoTooShortError(
            f"{frames} frames ({duration:.2f} s) is too short: the mark needs at least "
            f"{limits.MIN_FRAMES} frames and {limits.MIN_SECONDS:.0f} s")
    bit_rate = int(container.bit_rate) if container.bit_rate else None
    return VideoInfo(fmt, width, height, fps, frames, duration, codec, audio_codec, bit_rate)


def _duration(container: av.container.InputContainer, video: Any) -> float:
    if video.duration is not None and video.time_base is not None and video.duration > 0:
        return float(video.duration * video.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    return 0.0


def probe_video(data: bytes) -> VideoInfo:
    """Container facts about `data`, after checking it can be marked (see the module).

    Decodes at most the first few frames. Raises `CorruptVideoError`,
    `UnsupportedVideoError` (also for pictures that are not 8-bit 4:2:0),
    `VideoTooLargeError` or `VideoTooShortError`.
    """
    import av

    try:
        return _probe(data)
    except WatermarkError:
        raise
    except (av.FFmpegError, ValueError, OSError) as error:
        raise CorruptVideoError(f"the video cannot be read: {error}") from error


def _probe(data: bytes) -> VideoInfo:
    import av

    fmt = check_format(data)
    with open_input(bytes(data)) as container:
        info = streams_info(container, fmt)
        video = container.streams.video[0]
        try:
            for packet in container.demux(video):
                if packet.size == 0:
                    continue
                decoded = packet.decode()
                if decoded:
                    check_pixels(decoded[0])
                    return info
        except WatermarkError:
            raise
        except (av.FFmpegError, ValueError, OSError) as error:
            raise CorruptVideoError(f"the video does not decode: {error}") from error
    raise CorruptVideoError("no frame of the video decodes")


def check_pixels(frame: Any) -> None:
    """`UnsupportedVideoError` unless the decoded `frame` is 8-bit 4:2:0."""
    name = frame.format.name
    if name not in PIXEL_FORMATS:
        raise UnsupportedVideoError(f"pixel format {name!r}: 8-bit 4:2:0 only "
                                    f"({', '.join(PIXEL_FORMATS)})")
