"""What the video mark accepts: sizes, rates and lengths, checked from the container before
any frame is decoded, so a hostile file costs nothing to refuse.

Why these numbers:
- `MAX_WIDTH` x `MAX_HEIGHT` (3840 x 2160, either orientation): UHD, the largest the
  platform sells. A decoded 4K frame is 12 MB in YUV 4:2:0 and the pipeline holds a few of
  them; 8K would be four times that and four times the marking time.
- `MAX_FPS` (120): high-frame-rate masters exist up to 120; beyond that a timestamp error
  is more likely than a real master.
- `MAX_SECONDS` (4 hours): frames are streamed, so length costs time, not memory; what is
  held for the whole clip is the compressed audio (a few hundred MB at most at 4 h of
  256 kbit/s) and the audio of the segment being marked (`soundtrack.SEGMENT_SECONDS`).
  Marking runs about real time at 1080p, so 4 hours bounds one job at about 4 hours.
- `MIN_SECONDS` / `MIN_FRAMES`: the picture mark sums its evidence over frames; the
  tests mark and read 2-s clips, and a video below 1 s or 24 frames is refused
  (`VideoTooShortError`): too little for the self-check to promise a read, and too
  short to be worth selling as a video.
- `MIN_SIDE` (128): small frames get 8-pixel cells on the 360-row canonical picture
  (45 cells high); below 128 pixels a cell would cover under 3 of the frame's own
  pixels, which no encoder keeps.
"""

from __future__ import annotations

from typing import Final

MAX_WIDTH: Final = 3840
MAX_HEIGHT: Final = 2160
MAX_PIXELS: Final = MAX_WIDTH * MAX_HEIGHT
MIN_SIDE: Final = 128
MAX_FPS: Final = 120.0
MAX_SECONDS: Final = 4 * 3600.0
MIN_SECONDS: Final = 1.0
MIN_FRAMES: Final = 24
MAX_INPUT_BYTES: Final = 64 * 1024**3
"""A bytes object this large is not a video the agent holds in memory; refuse early."""
