"""Colour masks whose colours are slightly off their palette: ISPRS label files carry the
off-colours of a compressed history, DeepGlobe's docs say to binarize its masks at 128, and
every JPEG mask is off everywhere. A colour whose largest channel difference from a palette
colour (0..255) is at most ``ingest.color_tolerance`` is read as that colour. Lossless masks
snap a colour only when exactly one palette (or ignore) colour lies within the tolerance:
in a palette whose colours are closer than the tolerance (classes coded as greys 0, 1, 2)
the nearest is a guess, and a wrong guess silently merges a class. JPEG masks, off
everywhere, take the nearest (by that difference; on a tie, the first listed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

#: More than any channel difference: the distance of a colour when there is no palette
#: colour to compare it with.
NO_COLOUR = 256
#: Bytes of the (colours x palette x 3) int64 differences computed at once: small (about
#: 32 MiB) even for millions of colours against a 255-colour palette.
CHUNK_BYTES = 32 << 20


def code_channels(codes: np.ndarray) -> np.ndarray:
    """int64 0xRRGGBB codes (any shape) -> the same shape plus a last axis of R, G, B."""
    return np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1)


def nearest_colors(codes: np.ndarray, palette: np.ndarray,
                   tolerance: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each colour code, the index in ``palette`` (codes) of the nearest colour, its
    largest channel difference from it (``NO_COLOUR`` and index 0 for an empty palette) and
    how many palette colours lie within ``tolerance`` of it."""
    codes = np.asarray(codes, np.int64)
    nearest = np.zeros(len(codes), np.intp)
    distance = np.full(len(codes), NO_COLOUR, np.int64)
    within = np.zeros(len(codes), np.int64)
    if not len(palette):
        return nearest, distance, within
    targets = code_channels(np.asarray(palette, np.int64))
    chunk = max(1, CHUNK_BYTES // (len(targets) * 3 * 8))
    for start in range(0, len(codes), chunk):
        rgb = code_channels(codes[start:start + chunk])
        differences = np.abs(rgb[:, None, :] - targets[None, :, :]).max(axis=2)
        nearest[start:start + chunk] = differences.argmin(axis=1)
        distance[start:start + chunk] = differences.min(axis=1)
        within[start:start + chunk] = (differences <= tolerance).sum(axis=1)
    return nearest, distance, within


@dataclass
class Snapping:
    """How the colours found (code -> pixels) that are not palette colours are read."""
    tolerance: int
    read_as: dict[int, int] = field(default_factory=dict)  # code -> palette code it joins
    far: dict[int, int] = field(default_factory=dict)  # code beyond tolerance -> nearest
    distance: dict[int, int] = field(default_factory=dict)  # code -> its channel difference
    # far code -> how many palette colours lie within the tolerance (2 or more: no snap)
    ambiguous: dict[int, int] = field(default_factory=dict)

    def pixels(self, counts: Mapping[int, int], far: bool = False) -> int:
        return sum(counts[c] for c in (self.far if far else self.read_as))

    def largest(self, codes: Iterable[int]) -> int:
        return max((self.distance[c] for c in codes), default=0)


def snap_colors(counts: Mapping[int, int], palette: list[int], tolerance: int,
                unique: bool = False) -> Snapping:
    """Each colour of ``counts`` outside ``palette``: read as its nearest palette colour when
    within ``tolerance`` (with ``unique``, the only one within it), else far (with the
    nearest, for the message)."""
    snapping = Snapping(tolerance)
    inside = set(palette)
    off = np.array([c for c in counts if c not in inside], np.int64)
    nearest, distance, within = nearest_colors(off, np.array(palette, np.int64), tolerance)
    for code, index, gap, candidates in zip(off.tolist(), nearest.tolist(), distance.tolist(),
                                            within.tolist(), strict=True):
        target = palette[index] if palette else -1
        snaps = gap <= tolerance and not (unique and candidates > 1)
        (snapping.read_as if snaps else snapping.far)[code] = target
        snapping.distance[code] = gap
        if not snaps and gap <= tolerance:
            snapping.ambiguous[code] = candidates
    return snapping
