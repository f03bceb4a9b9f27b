"""Marking a video file: bytes in, bytes out, streaming frame by frame.

Two passes over the master's bytes (held by the caller anyway):
1. Demux everything once: the video packets are only counted and sized (the master's
   video bitrate is what the copy is encoded at), the soundtrack is decoded, marked in
   segments (`soundtrack`) and encoded; its compressed packets are kept.
2. Decode the picture, mark each frame (`frames`), encode, and mux, interleaving the kept
   audio packets by time.
Decoding, marking and encoding run in three threads joined by short queues (PyAV and
numpy release the GIL in their heavy parts), so the pipeline goes at the pace of its
slowest stage. What is held at any moment: a few decoded frames in the queues, the
encoders' own lookahead (x264 and libvpx keep a few dozen frames), the compressed audio,
and the output bytes.

Before returning, the copy is read back blind (`extract.read_picture`): its first frames,
then, only if those fall short, frames spread over the whole clip as the extractor reads
them; if the payload does not come back, `EmbedCheckError`.
"""

from __future__ import annotations

import contextlib
import io
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

import numpy as np

from watermark.errors import (
    CorruptVideoError,
    EmbedCheckError,
    UnsupportedVideoError,
    WatermarkError,
)
from watermark.payload import validate_key, validate_payload
from watermark.video import encode, frames, probe, soundtrack
from watermark.video.probe import LengthGuard, VideoInfo

Progress = Callable[[int, int], None]

PROGRESS_INTERVAL: Final = 0.1
"""Seconds between progress calls (at most ten a second)."""
CHECK_FRAMES: Final = 60
"""Frames of the copy the self-check reads: the first 60 (2 s at 30 fps). Spreading them
over the clip would mean decoding the whole copy again, doubling the decode cost of a
long video; the mark is the same in every frame, so a defect shows in the first ones. A
short, smooth clip can fall short in its first frames alone: the whole clip is then read
before the copy is refused."""
QUEUE_FRAMES: Final = 4
_DONE: Final = object()
_DEMUXER_TAGS: Final = frozenset({"major_brand", "minor_version", "compatible_brands"})
"""What FFmpeg's MP4 demuxer reports from the 'ftyp' box: the muxer writes its own."""


@dataclass
class _Pass1:
    video_bytes: int
    video_packets: int
    audio: soundtrack.SoundtrackResult | None


def _guard(error: BaseException) -> CorruptVideoError:
    return CorruptVideoError(f"the video does not decode: {error}")


def _first_pass(data: bytes, info: VideoInfo, output: Any, key: bytes, payload: int
                ) -> _Pass1:
    """Size the video packets; decode, mark and encode the soundtrack."""
    import av

    with probe.open_input(data) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        sizes = [0, 0]
        guards = (LengthGuard.of_info(info), _audio_guard(container, info))
        firsts: tuple[list[float], list[float]] = ([], [])
        out_audio = None
        if audio is not None:
            out_audio = _audio_stream(output, audio, info.format,
                                      _audio_bit_rate(data, info))

        def audio_frames() -> Any:
            streams = [video] if audio is None else [video, audio]
            for packet in container.demux(*streams):
                kind = 0 if packet.stream.type == "video" else 1
                _guard_packet(guards[kind], packet, firsts[kind], sizes[1] if kind == 0 else 0)
                if packet.stream.type == "video":
                    if packet.size:
                        sizes[0] += packet.size
                        sizes[1] += 1
                    continue
                if packet.size:
                    yield from packet.decode()
            if audio is not None:
                yield from audio.codec_context.decode(None)

        try:
            if audio is None or out_audio is None:
                for _ in audio_frames():
                    pass
                return _Pass1(sizes[0], sizes[1], None)
            layout = audio.codec_context.layout.name
            rate = audio.codec_context.sample_rate
            start = audio.start_time or 0
            start_pts = round(float(start * audio.time_base) * rate) if audio.time_base else 0
            writer = soundtrack.SegmentEncoder(out_audio, layout, rate, max(0, start_pts))
            chunks = soundtrack.decoded_chunks(audio_frames(), layout, rate)
            result = soundtrack.mark_track(chunks, writer, key, payload)
        except WatermarkError:
            raise
        except (av.FFmpegError, ValueError, OSError) as error:
            raise _guard(error) from error
    return _Pass1(sizes[0], sizes[1], result)


def _audio_guard(container: Any, info: VideoInfo) -> LengthGuard:
    """The length guard for soundtrack packets: the soundtrack may run past the picture,
    so its bound is the container's duration where that is longer (mvhd, WebM's Info)."""
    overall = container.duration / 1_000_000 if container.duration else 0.0
    return LengthGuard(0, info.fps, max(info.duration_seconds, overall))


def _guard_packet(guard: LengthGuard, packet: Any, first: list[float], count: int) -> None:
    """`guard.check` on a demuxed packet: `count` video packets so far, and the packet's
    time after the first packet's of its stream (`first` holds that, once seen)."""
    if packet.pts is None or packet.time_base is None:
        guard.check(count, None)
        return
    stamp = float(packet.pts * packet.time_base)
    if not first:
        first.append(stamp)
    guard.check(count, stamp - first[0])


def _audio_bit_rate(data: bytes, info: VideoInfo) -> int | None:
    """The soundtrack's bitrate from its packets (WebM states none), by a demux without
    decoding; None if there is too little of it to measure."""
    first: list[float] = []
    with probe.open_input(data) as container:
        guard = _audio_guard(container, info)
        stream = container.streams.audio[0]
        total = 0
        last = 0.0
        for packet in container.demux(stream):
            _guard_packet(guard, packet, first, 0)
            if packet.size and packet.pts is not None and packet.time_base is not None:
                total += packet.size
                last = max(last, float((packet.pts + (packet.duration or 0))
                                       * packet.time_base))
    return round(total * 8 / last) if last > 0.5 else None


def _audio_stream(output: Any, source: Any, fmt: str, measured: int | None) -> Any:
    context = source.codec_context
    rate = context.sample_rate
    if fmt == "WEBM" and rate not in (48_000, 24_000, 16_000, 12_000, 8_000):
        rate = 48_000  # Opus runs at 48 kHz (a Vorbis track at 44.1 kHz is resampled)
    stream = output.add_stream(encode.audio_codec_name(fmt), rate=rate,
                               layout=context.layout.name)
    stated = context.bit_rate or source.bit_rate or measured or 0
    stream.bit_rate = max(encode.MIN_AUDIO_BIT_RATE,
                          int(stated) if stated else encode.DEFAULT_AUDIO_BIT_RATE)
    stream.codec_context.thread_count = 1
    stream.metadata.update(dict(source.metadata))
    return stream


def _video_stream(output: Any, source: Any, fmt: str, bit_rate: int) -> Any:
    rate = probe.fps_of(source) or Fraction(30)
    stream = output.add_stream(encode.video_codec_name(fmt), rate=rate)
    context = source.codec_context
    stream.width, stream.height = context.width, context.height
    stream.pix_fmt = "yuv420p"
    stream.bit_rate = bit_rate
    stream.time_base = source.time_base
    stream.codec_context.time_base = source.time_base
    stream.codec_context.thread_count = encode.THREADS
    stream.codec_context.thread_type = "FRAME"
    stream.options = encode.video_options(fmt)
    stream.metadata.update(dict(source.metadata))
    return stream


def _video_bit_rate(pass1: _Pass1, info: VideoInfo) -> int:
    seconds = max(info.duration_seconds, 1e-3)
    measured = round(pass1.video_bytes * 8 / seconds)
    return max(encode.MIN_VIDEO_BIT_RATE, measured)


class _Progress:
    """Calls `progress` at most every `PROGRESS_INTERVAL` seconds, and once at the end."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.last = -math.inf

    def update(self, done: int, *, final: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        if final or now - self.last >= PROGRESS_INTERVAL:
            self.last = now
            self.callback(done, done if final else max(self.total, done))


def _decoder(data: bytes, out: queue.Queue[Any], stop: threading.Event) -> None:
    """Decode the picture into `out` (plus, last, _DONE or the exception that ended it)."""
    import av

    try:
        with probe.open_input(data) as container:
            video = container.streams.video[0]
            video.codec_context.thread_count = encode.THREADS
            video.codec_context.thread_type = "AUTO"
            for frame in container.decode(video):
                if stop.is_set():
                    return
                out.put(frame)
        out.put(_DONE)
    except (av.FFmpegError, ValueError, OSError) as error:
        out.put(_guard(error))
    except Exception as error:  # noqa: BLE001 - handed to the main thread, re-raised there
        out.put(error)


def _planes(frame: Any) -> Any:
    """The frame, 8-bit 4:2:0 (`probe.PIXEL_FORMATS`), as `probe_video` checked on the
    first one; a later frame in another format is refused, never converted (swscale's
    output differs between CPUs). Full-range 'yuvj420p' has the same layout and is kept
    as it is (its range travels in the frame's color_range)."""
    if frame.format.name not in probe.PIXEL_FORMATS:
        raise UnsupportedVideoError("the pixel format changes within the video: "
                                    "8-bit 4:2:0 only")
    return frame


def embed_video_bytes(data: bytes, key: bytes, payload: int, *,
                      progress: Progress | None = None) -> bytes:
    """A copy of the MP4 or WebM `data` carrying `payload` under `key`, in the picture
    (every frame) and in the soundtrack (where long enough), same container.

    Raises `InvalidKeyError`, `InvalidPayloadError`, an `UnsupportedVideoError` subclass
    (see `probe_video`), or `EmbedCheckError` when the copy does not read back.
    """
    import av

    raw_key = validate_key(key)
    value = validate_payload(payload)
    info = probe.probe_video(data)
    raw = bytes(data)
    from watermark.video.extract import read_picture

    try:
        marked = _mark(raw, info, raw_key, value, progress)
        grid = (frames.grid_cols(info.width, info.height)[0],
                frames.embed_cell(info.width, info.height))
        result = read_picture(marked, raw_key, max_frames=CHECK_FRAMES,
                              grid_of_master=grid, stride=1)
        if result.payload != value:
            # The first frames alone fell short (a short, smooth clip, say): read the
            # copy as the extractor will, over the whole clip, before refusing it.
            result = read_picture(marked, raw_key, grid_of_master=grid)
    except WatermarkError:
        raise
    except (av.FFmpegError, ValueError, OSError) as error:
        # whatever PyAV, FFmpeg or numpy raised that the stages did not catch (an
        # encoder thread's ValueError, a muxer's error on close) is a video that failed
        raise _guard(error) from error
    if result.payload != value:
        raise EmbedCheckError("the marked video does not read back: the picture has no "
                              "room for a mark at this bitrate")
    return marked


def _mark(data: bytes, info: VideoInfo, key: bytes, payload: int,
          progress: Progress | None) -> bytes:
    import av

    buffer = io.BytesIO()
    container_format = "mp4" if info.format == "MP4" else "webm"
    options = dict(encode.MUXER_OPTIONS)
    with probe.open_input(data) as source:
        tags = {name: value for name, value in source.metadata.items()
                if name not in _DEMUXER_TAGS}
    output = av.open(buffer, "w", format=container_format, container_options=options)
    failed = True
    try:
        output.metadata.update(tags)
        pass1 = _first_pass(data, info, output, key, payload)
        if info.frames and pass1.video_packets < 1:
            raise CorruptVideoError("the video stream holds no frame")
        with probe.open_input(data) as source:
            out_video = _video_stream(output, source.streams.video[0], info.format,
                                      _video_bit_rate(pass1, info))
        audio_packets = list(pass1.audio.packets) if pass1.audio else []
        count = _mark_picture(data, info, output, out_video, audio_packets=audio_packets,
                              key=key, payload=payload,
                              progress=_Progress(progress, info.frames))
        for packet in audio_packets:
            output.mux(packet)
        failed = False
    except WatermarkError:
        raise
    except (av.FFmpegError, ValueError, OSError) as error:
        raise _guard(error) from error
    finally:
        if failed:
            # already failing: an error from close() must not replace the real one
            with contextlib.suppress(Exception):
                output.close()
        else:
            output.close()
    if count < 1:
        raise CorruptVideoError("no frame of the video decodes")
    return buffer.getvalue()


def _packet_time(packet: Any) -> float:
    stamp = packet.pts if packet.pts is not None else packet.dts
    return float(stamp * packet.time_base) if stamp is not None else 0.0


def _mark_picture(data: bytes, info: VideoInfo, output: Any, stream: Any, *,
                  audio_packets: list[Any], key: bytes, payload: int,
                  progress: _Progress) -> int:
    """Decode, mark and encode every frame; mux video and audio packets in time order."""
    cols = frames.grid_cols(info.width, info.height)[0]
    cell = frames.embed_cell(info.width, info.height)
    decoded: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
    stop = threading.Event()
    reader = threading.Thread(target=_decoder, args=(data, decoded, stop), daemon=True)
    reader.start()
    encoded: queue.Queue[Any] = queue.Queue(QUEUE_FRAMES)
    failure: list[BaseException] = []

    def encoder() -> None:
        try:
            while (frame := encoded.get()) is not _DONE:
                for packet in stream.encode(frame):
                    _mux_until(output, audio_packets, _packet_time(packet))
                    output.mux(packet)
            for packet in stream.encode(None):
                _mux_until(output, audio_packets, _packet_time(packet))
                output.mux(packet)
        except Exception as error:  # noqa: BLE001 - re-raised in the main thread
            failure.append(error)
            while encoded.get() is not _DONE:
                pass

    writer = threading.Thread(target=encoder, daemon=True)
    writer.start()
    count = 0
    guard = LengthGuard.of_info(info)
    last_pts: int | None = None
    last_time: float | None = None
    first_time: float | None = None
    try:
        while True:
            item = decoded.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            frame = _planes(item)
            if (frame.width, frame.height) != (info.width, info.height):
                raise UnsupportedVideoError("the picture size changes within the video")
            if count == 0:
                _describe(stream, frame)
            if frame.pts is None:
                frame.pts = 0 if last_pts is None else last_pts + 1
            last_pts = frame.pts
            if frame.time is not None:
                first_time = float(frame.time) if first_time is None else first_time
                last_time = float(frame.time) - first_time
            guard.check(count + 1, last_time)
            out = _marked_frame(frame, key, payload, cols, cell)
            encoded.put(out)
            count += 1
            progress.update(count)
            if failure:
                break
    finally:
        stop.set()
        while reader.is_alive():
            with contextlib.suppress(queue.Empty):
                decoded.get(timeout=0.05)
        encoded.put(_DONE)
        writer.join()
    if failure:
        raise failure[0]
    _check_complete(info, count, last_time)
    progress.update(count, final=True)
    return count


def _check_complete(info: VideoInfo, count: int, last_time: float | None) -> None:
    """Refuse a copy of a video that stopped early: the container promised more frames
    than decoded (a truncated download whose index survived)."""
    frame = 1.0 / info.fps
    slack = max(0.25, 2 * frame)
    if last_time is not None and last_time + frame < info.duration_seconds - slack:
        raise CorruptVideoError(
            f"the video stops at {last_time + frame:.2f} s of the {info.duration_seconds:.2f} s "
            "its container states: truncated or damaged")
    if count < info.frames * 0.9 - 1:
        raise CorruptVideoError(f"only {count} of the {info.frames} frames the container "
                                "states decode: truncated or damaged")


def _describe(stream: Any, frame: Any) -> None:
    """Before the encoder opens: the first frame's colour description (a full-range
    phone video stays full range) and display rotation (portrait video)."""
    context = stream.codec_context
    context.color_range = frame.color_range
    context.colorspace = frame.colorspace
    context.color_primaries = frame.color_primaries
    context.color_trc = frame.color_trc
    if frame.rotation:
        stream.set_display_rotation(frame.rotation)


def _mux_until(output: Any, audio_packets: list[Any], until: float) -> None:
    while audio_packets and _packet_time(audio_packets[0]) <= until:
        output.mux(audio_packets.pop(0))


def _marked_frame(frame: Any, key: bytes, payload: int, cols: int, cell: int) -> Any:
    """A new yuv420p frame: the luma marked, chroma and timing as in `frame`."""
    import av

    height, width = frame.height, frame.width
    plane = frame.planes[0]
    y_plane = np.frombuffer(plane, np.uint8).reshape(height, plane.line_size)[:, :width]
    marked = frames.mark_luma(y_plane, key, payload, cols, cell)
    array = frame.to_ndarray()
    array[:height] = marked
    out = av.VideoFrame.from_ndarray(array, format="yuv420p")
    out.pts = frame.pts
    out.time_base = frame.time_base
    out.color_range = frame.color_range
    out.colorspace = frame.colorspace
    return out
