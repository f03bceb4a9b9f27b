"""Keyed, invisible, robust marking of MP4 and WebM videos with the image mark's 64-bit
payload, in the picture (every frame) and in the soundtrack (the audio mark).

Bytes in, bytes out: `embed_video_bytes` marks a copy, `extract_video_bytes` reads one,
blind or informed by the master's bytes; `probe_video` checks a file before either.
docs/WATERMARK.md ("Video") explains the method and its limits. PyAV is imported only
when a function that decodes is called.
"""

from watermark.video.codec import embed_video_bytes
from watermark.video.extract import extract_video_bytes
from watermark.video.probe import VIDEO_FORMATS, VideoInfo, probe_video, sniff_video

__all__ = [
    "VIDEO_FORMATS",
    "VideoInfo",
    "embed_video_bytes",
    "extract_video_bytes",
    "probe_video",
    "sniff_video",
]
