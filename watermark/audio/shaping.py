"""How strongly each cell is marked: following the music, within the noise budget.

The change is multiplicative (a half-band's level up or down by some dB), so it follows the
spectral envelope by construction and is exactly zero in digital silence. On top of that:
- quiet steps get a fainter mark and steps near silence none (`QUIET_DBFS`);
- a step that starts a note gets half (`ONSET_DB`): its frames reach back before the onset,
  where a full change would be heard as a pre-echo;
- the loudest cells are turned down first to meet the noise budget. A log-level change
  costs energy in proportion to the cell's power, and the reader weighs every cell alike,
  so a budget spent on the loud cells would buy the least evidence; they are also the
  cells whose own level masks a change the least in relative terms. The reference power
  above which cells are turned down is found by bisection so that the copy lands on
  `SNR_TARGET_DB`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from watermark.audio.params import ONSET_DB, QUIET_DBFS, SNR_TARGET_DB, STRENGTH_DB

Floats = NDArray[np.float64]


def loudness_factor(level_dbfs: Floats) -> Floats:
    """Per step, 0 in silence, 1 at normal levels, linear in dB between; halved at onsets."""
    quiet, loud = QUIET_DBFS
    factor = np.clip((level_dbfs - quiet) / (loud - quiet), 0.0, 1.0)
    rise = np.diff(level_dbfs, prepend=level_dbfs[:1])
    return np.where(rise > ONSET_DB, 0.5 * factor, factor)


def _cost(low: Floats, high: Floats, strength_db: Floats) -> float:
    """Energy of the change: one half raised, the other lowered, by ``strength_db``."""
    up = strength_db / 20  # (10^(s/20) - 1)^2, worked in place: this runs in a bisection
    np.power(10.0, up, out=up)
    up -= 1
    np.square(up, out=up)
    down = strength_db / -20  # (1 - 10^(-s/20))^2
    np.power(10.0, down, out=down)
    np.subtract(1, down, out=down)
    np.square(down, out=down)
    up *= low
    down *= high
    up += down
    return float(up.sum())


def cell_strengths(low: Floats, high: Floats, level_dbfs: Floats, total_power: float, *,
                   snr_db: float = SNR_TARGET_DB) -> Floats:
    """Per cell (steps x bands), the change in dB; ``low``/``high`` are the halves' power
    and ``total_power`` the whole signal's, in the same units, and ``snr_db`` the ratio
    of the signal to the change that the frame-domain estimate should reach."""
    ceiling = STRENGTH_DB * loudness_factor(level_dbfs)[:, None] * np.ones_like(low)
    power = low + high
    budget = total_power * 10 ** (-snr_db / 10)
    if _cost(low, high, ceiling) <= budget:
        return ceiling
    floor = np.maximum(power, 1e-300)

    def strengths(reference: float) -> Floats:
        share = reference / floor
        np.sqrt(share, out=share)
        np.minimum(1.0, share, out=share)
        share *= ceiling
        return share

    lowest, highest = -300.0, float(np.log10(max(float(power.max()), 1e-300)))
    for _ in range(60):
        middle = 0.5 * (lowest + highest)
        if _cost(low, high, strengths(10**middle)) > budget:
            highest = middle
        else:
            lowest = middle
    return strengths(10**lowest)
