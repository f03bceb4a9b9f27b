"""Sealed delivery's constants: the sizes and powers the security argument in
docs/SEALED.md is made for.

Changing any of them changes what a container, a table or a mark is, so a container
records the ones it was made with (`SealedInfo`) and readers take them from there.
"""

from __future__ import annotations

from typing import Final

LOOKUPS: Final = 4
"""R: table entries summed into each sealed coefficient. With entries of +-1 the mark on a
cell is a sum of four signs (variance 4); the noise is a sum of four Gaussian entries."""

USES_PER_ENTRY: Final = 2
"""About how many lookups hit each table entry. The table has at least cells x R / 2
entries, so the lookups give fewer equations than there are entries: a buyer cannot solve
its table's mark entries out of its own copy any better than it can estimate the mark on
each cell directly (see docs/SEALED.md, "Why the table is large")."""

MIN_TABLE_ENTRIES: Final = 1 << 15
MAX_TABLE_ENTRIES: Final = 1 << 23
"""Tables are powers of two between these: 64 KiB to 16 MiB of 16-bit entries (the
largest for 20 minutes of 48 kHz audio, the longest recording the library takes)."""

NOISE_SIGMA: Final = 1024
"""Standard deviation of a noise-table entry, in table units (a mark entry is +-1). The
weakest cell (scale 4) then carries noise of 4 x 2 x 1024 / 16 = 512 grey levels, twice the
whole range of a pixel: the sealed coefficient says nothing about the one it hides."""

NOISE_CLIP: Final = 30 * NOISE_SIGMA
"""Entries are clipped here (never reached: they are bounded at 6 standard deviations) so
a table entry fits 16 bits."""

MIN_SCALE: Final = 4
MAX_SCALE: Final = 255
"""A cell's mark scale s, in 1/8 grey level of mark standard deviation (the mark on a cell
is s x (sum of R entries) / 16 grey levels at the bump's peak)."""

COEFFICIENT_UNIT: Final = 16
"""Sealed coefficients are integers in 1/16 of a grey level."""

BUMP_UNIT: Final = 64
"""The cell's bump is rounded to 1/64 per axis, so bump x coefficient is an exact integer
in 2**-16 grey levels and every machine computes the same pixels from the same integers."""

PSNR: Final = 40.6
"""Budget for the mask (dB): a little above the 40 dB floor, for the second rounding and
the spread of a sum of four signs."""

CODE_BITS: Final = 2048
"""m: length of the Tardos code a licence's payload selects. Each bit owns table_size / m
entries, scattered over the whole picture."""

MAX_COALITION: Final = 5
"""c: the coalition size the code's bias distribution is cut for (Tardos's cutoff
t = 1 / (300 c)). Larger coalitions are outside what the code promises."""

EPSILON: Final = 1e-6
"""The accusation threshold keeps the chance of naming any innocent licence, among all the
licences a trace is run against, below this."""
