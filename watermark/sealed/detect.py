"""Tracing a sealed copy: from the suspect's pixels to the licences that made it.

The fast detection of Celik et al. (2008): the copy is registered to the master and the
master subtracted, as in the image mark's informed read; each cell's matched-filter output
is then credited to the table entries the cell added up, each entry's credit to its code
bit (times its chip), and each bit's sum, normalised by its noise, is the soft evidence.
That takes one pass over the cells, whatever the number of licences; checking a licence
is then one product of its codeword's Tardos weights with the evidence (`tardos.scores`),
so a million licences are checked in about a minute on two cores (docs/BENCHMARKS.md).

The evidence is centred on the code's biases before scoring: a copy averaged from several
licences carries, on every bit, a pull towards the bias that no licence in particular is
responsible for, and leaving it in would only add to every score's noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from watermark import grid
from watermark.codec import READABLE_FORMATS, open_image
from watermark.extract import fit_gain, registered
from watermark.mask import choose_cell
from watermark.payload import validate_key, validate_payload
from watermark.planes import MIN_SUSPECT_PIXELS, luma_of
from watermark.register import Alignment, coverage
from watermark.sealed import keyed, tardos
from watermark.sealed.lookups import lookups
from watermark.sealed.params import CODE_BITS, EPSILON, MAX_COALITION
from watermark.sealed.sealing import PARAMS, scales, table_size_for

_SHOWN = 5


@dataclass(frozen=True)
class Candidate:
    """A licence's payload and how strongly the copy points at it."""

    payload: int
    score: float
    """Standardised: an innocent licence's score has mean 0 and variance 1."""
    false_accusation_bound: float
    """Bound on the chance that any innocent licence among those checked scores this high."""


@dataclass(frozen=True)
class Accusation:
    """Who a suspect copy names: `accused` holds only licences above the threshold."""

    accused: tuple[Candidate, ...]
    candidates: tuple[Candidate, ...]
    threshold: float
    licences: int
    epsilon: float
    registration: Alignment | None
    """How an image copy was registered to its master (None for a recording)."""
    strength: float
    """The evidence's strength: the norm of the uncentred bit evidence over sqrt(bits)
    (about 1 for a copy with no mark of this work, far above for a marked one)."""


def bit_evidence(matched: NDArray[np.float64], noise: NDArray[np.float64],
                 scale: NDArray[np.float64], key: bytes,
                 table_size: int) -> tuple[NDArray[np.float64], float]:
    """Unit-norm soft evidence per code bit from each cell's matched-filter output, its
    noise power and its mark scale (zero scale: the cell is not read), and its strength.

    Shared by every medium: a cell is whatever carries one sealed coefficient."""
    weight = (scale / noise).ravel()
    per_cell = weight * matched.ravel()
    picked = lookups(keyed.lookup_seed(key), per_cell.size, table_size)
    entry = np.bincount(picked.ravel(), weights=np.repeat(per_cell, picked.shape[1]),
                        minlength=table_size)
    entry_noise = np.bincount(picked.ravel(), weights=np.repeat(
        np.square(weight) * noise.ravel(), picked.shape[1]), minlength=table_size)
    chips, bits = keyed.entry_layout(key, table_size, CODE_BITS)
    per_bit = np.bincount(bits, weights=chips * entry, minlength=CODE_BITS)
    spread = np.sqrt(np.maximum(np.bincount(bits, weights=entry_noise, minlength=CODE_BITS),
                                1e-12))
    soft = per_bit / spread
    strength = float(np.linalg.norm(soft) / np.sqrt(CODE_BITS))
    p = keyed.biases(key, CODE_BITS, MAX_COALITION)
    centre = 2.0 * p - 1.0
    soft = soft - centre * float(soft @ centre) / float(centre @ centre)
    norm = float(np.linalg.norm(soft))
    return (soft / norm if norm > 0 else soft), strength


def evidence(suspect: NDArray[np.float32], master: NDArray[np.float32],
             key: bytes) -> tuple[NDArray[np.float64], Alignment, float]:
    """Unit-norm soft evidence per code bit of an image, the registration, the strength."""
    cell = choose_cell(master, PARAMS)
    height, width = master.shape
    rows, cols = height // cell, width // cell
    copy = registered(suspect, master)
    valid = coverage(copy.matrix, master.shape, copy.suspect_shape, cell, 2.0)
    inside = np.zeros(master.shape, dtype=bool)
    inside[: rows * cell, : cols * cell] = np.kron(valid, np.ones((cell, cell), dtype=bool))
    gain, offset = fit_gain(copy.seen[inside], copy.warped[inside])
    residual = np.where(inside, copy.warped - (gain * copy.seen + offset), 0.0).astype(np.float32)
    matched = grid.cell_weighted_sums(residual, cell)
    matched = matched - grid.box_mean(matched, 2)
    noise = grid.box_mean(np.square(matched), 2) + np.float32(1e-3)
    scale = np.where(valid, scales(master, cell).astype(np.float64), 0.0)
    soft, strength = bit_evidence(matched.astype(np.float64), noise.astype(np.float64), scale,
                                  key, table_size_for(rows * cols))
    return soft, copy.alignment, strength


def accusation(soft: NDArray[np.float64], key: bytes, values: list[int], *, epsilon: float,
               alignment: Alignment | None, strength: float) -> Accusation:
    """Score every licence against the evidence and name those above the threshold."""
    p = keyed.biases(key, CODE_BITS, MAX_COALITION)
    bound = tardos.TailBound(p, soft)
    threshold = bound.threshold(len(values), epsilon)
    if not values or not np.any(soft):
        return Accusation((), (), threshold, len(values), epsilon, alignment, strength)
    scored = tardos.scores(key, values, p, soft)
    order = np.argsort(-scored, kind="stable")

    def candidate(index: int) -> Candidate:
        score = float(scored[index])
        chance = min(1.0, len(values) * bound.probability(score))
        return Candidate(values[index], score, chance)

    shown = tuple(candidate(int(i)) for i in order[:_SHOWN])
    accused = tuple(candidate(int(i)) for i in order[scored[order] >= threshold])
    return Accusation(accused, shown, threshold, len(values), epsilon, alignment, strength)


def accuse_image(suspect: bytes, master: bytes, key: bytes, payloads: Sequence[int], *,
           epsilon: float = EPSILON) -> Accusation:
    """Which of `payloads` (every licence issued for the work) made the suspect copy.

    Raises `InvalidKeyError`, `InvalidPayloadError`, or an `UnsupportedImageError`
    subclass for a suspect or master that cannot be read.
    """
    raw_key = validate_key(key)
    values = [validate_payload(p) for p in payloads]
    copy_image = open_image(suspect, formats=READABLE_FORMATS, min_pixels=MIN_SUSPECT_PIXELS)
    master_image = open_image(master, formats=READABLE_FORMATS)
    soft, alignment, strength = evidence(luma_of(copy_image, min_pixels=MIN_SUSPECT_PIXELS),
                                         luma_of(master_image), raw_key)
    return accusation(soft, raw_key, values, epsilon=epsilon, alignment=alignment,
                      strength=strength)
