"""The audio mark's fixed parameters: changing any of them changes every marked copy.

The platform's marking audit recomputes copies, so these are part of the format, like
the image mark's: a new value needs a new layout label (`layout._LABEL`), never an edit.
Times are in seconds and frequencies in hertz, so a copy resampled to another rate (an
MP3 at 64 kbit/s comes back at 24 kHz) is read on the same grid.
"""

from __future__ import annotations

from typing import Final

HOP_SECONDS: Final = 1024 / 44100
"""Analysis hop (23.2 ms): half of a 46 ms frame, short enough to follow notes."""

STEP_HOPS: Final = 2
"""Hops per chip step: one chip holds for two hops (46 ms), so a reader whose frames sit
up to a quarter of a hop off still sees most of it."""

BAND_LOW_HZ: Final = 300.0
BAND_HIGH_HZ: Final = 7000.0
"""The marked range: above the bass that dominates a mix's energy (where every change is
costly), below 8 kHz (low-pass attacks, MP3 at 64 kbit/s, a 16 kHz speech recording)."""

BAND_RATIO: Final = 1.10
BAND_MIN_HZ: Final = 60.0
"""Bands grow by 10% (about a semitone and a half), at least 60 Hz wide: wide enough that
a 1% speed change moves little energy across a band's edge before the reader corrects for
it, narrow enough for 31 bands of independent chips."""

PERIOD_STEPS: Final = 150
"""The pattern repeats every 150 steps (7.0 s): any 10 s excerpt holds a whole period, and
a long clip adds up its periods' evidence."""

SYNC_SHARE: Final = 4
"""One cell in four carries the keyed synchronisation pattern; the rest carry data."""

STRENGTH_DB: Final = 3.0
"""Largest change of a half-band's level, in dB (raised in one half, lowered in the other)."""

SNR_TARGET_DB: Final = 31.0
SNR_FLOOR_DB: Final = 30.0
"""The embedder allocates strength to land on the target; a copy below the floor is
refused (`EmbedCheckError`), never handed over."""

QUIET_DBFS: Final = (-80.0, -50.0)
"""A step whose level is below the first value (dBFS) gets no mark, above the second the
full mark, linearly in dB between: quiet passages carry a fainter mark, silence none."""

ONSET_DB: Final = 9.0
"""A step this much louder than the one before starts a note: its frames reach back before
the onset, where a full-strength change could be heard as pre-echo, so it gets half."""

HIGHPASS_STEPS: Final = 2
WEIGHT_STEPS: Final = 3
WEIGHT_BANDS: Final = 2
"""The reader removes the music's own slow changes and weights each cell by the inverse of
its neighbourhood's variance (7 steps x 5 bands; a blind decode divides by the deviation
instead, `CELL_LIMIT`). The embedder's self-check and the
informed read remove a moving average over 5 steps; a blind read removes, per band, the
share of a step that its two neighbours predict (`statistic.interpolation_residual`)."""

FLOOR_PERCENTILE: Final = 5.0
FLOOR_RANGE_DB: Final = 10.0
"""A band's floor in a copy is its quietest twentieth. The blind sync search (and the
embedder's self-check) counts a cell in proportion to how far its band's level stands above
that floor, fully from 10 dB up: added noise that fills a speech clip's pauses and formant
gaps then does not outvote the cells that carry the mark. The decode weighs cells by the
mark measured in the copy instead (`LEVEL_EDGES_DB`). Reader-side, like the three above:
the marked samples do not depend on it."""

LEVEL_EDGES_DB: Final = (3.0, 6.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0)
GROUP_EDGES_HZ: Final = (1000.0, 3300.0)
MIN_CLASS_SYNC: Final = 8
"""A blind read decodes with each cell weighted by how much mark cells like it carry in
this very copy, measured on its sync cells once the placement is found: cells are sorted
into classes by their level above their band's floor (dB, these edges) and by band group
(below 1 kHz, to 3.3 kHz, above), and a class counts in proportion to its sync cells' mean
agreement with the sync pattern over its cells' variance, or not at all where that is not
positive or rests on fewer than `MIN_CLASS_SYNC` sync cells. The pauses of a speech
excerpt (room noise the mark rode on) then count fully, and the same pauses filled with
added noise (no mark) count nothing, which no fixed weighting by level can tell apart.
The reader's only: the marked samples do not depend on it."""

CELL_LIMIT: Final = 2.0
"""A blind decode counts each cell in units of its neighbourhood's deviation, held within
+-2 of them: a transient that the neighbourhood did not see coming (a note's onset, a
click) then weighs no more than a cell that carries the mark plainly. The reader's only."""

SPEED_STEP: Final = 0.0025
SPEED_STEPS: Final = 8
"""Blind reads try speeds within +-2% in steps of 0.25%; a step that small leaves at most
0.125% of drift, a fraction of a chip over a whole period."""

MIN_SAMPLE_RATE: Final = 16_000
MAX_SAMPLE_RATE: Final = 192_000
MAX_CHANNELS: Final = 8
MIN_SECONDS: Final = 8.0
"""A copy must hold a whole period and its frames' edges to carry all 282 coded bits."""
