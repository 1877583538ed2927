"""Which scenes look like OVERLAPPING crops of one original image: B's first columns repeat
A's columns from some x on (or B's first rows repeat A's rows from some y on).

Published datasets often cut a large photo into crops with a stride smaller than the crop
(half-overlapping 256 px chips at a 128 px stride, say) and ship them as separate files
without a CRS; a scene-level split then tests on pixels it trained on. ``neighbours.py``
finds crops that only touch; this module finds the ones that overlap.

Each scene is reduced to a band-mean thumbnail (long side ``THUMB``, block means, then a
2x2 moving average so detail finer than a thumbnail pixel does not alias; NaN where
nodata). Every interior column of a thumbnail, and every halfway point between two, gets a
descriptor (its ``BINS`` bin means); these go into a k-d tree, and each scene's first column
is looked up in it (rows likewise, on the transposed thumbnails), so the cost grows with
n log n, not n². A hit on another scene (``CANDIDATES`` at most) is kept only if it is closer
than the scene's own column two steps in, and then verified on the thumbnails: the mean
absolute difference over the overlap at the best offset near the hit (one column, two rows,
half-pixel steps) must be under ``RATIO`` of the difference at offsets three columns or four
rows away, where repetitive texture or a flat blank border match as well (so they never
pass), with at least half of the overlap valid. Overlaps under an eighth of the width are
left to the edge test of ``neighbours.py``.

Not found: crops offset along both axes at once (their first column is only part of one of
A's columns; in a grid of crops they join through their row and column neighbours), and
crops whose contrast was stretched one by one (the overlap's values differ).

Measured (load average ~2.7) on synthetic textured photos with field rows, cut into 3x3
crops, PNG or JPEG (quality 75): every overlap along one axis found for 32 px crops at a 16 px
stride (96/96), 256 at 128 and 96 (96/96, 144/144), 200 at 150 (offsets between thumbnail
pixels, 96/96), 64 at 32 in 4x4 (480/480); 256 at 128 with each crop moved up to 3 px: 49/58,
every photo still one group; 0 false pairs in all, also among 150 photos cut 2x2 (600 scenes,
600/600 found, 8 s). The tea-plantations chips as JPEGs: all 15 half overlaps (and the 8
touching pairs by ``neighbours.py``), no false pair, one group of 11."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from rasterio.enums import Resampling

from components.neighbours import MAX_SCENES as MAX_TOUCHING_SCENES
from components.neighbours import quiet
from components.raster import invalid_pixels, read_window
from serving.bands import band_nodata

THUMB = 64  # long side of the thumbnail the search works on
BINS = 8  # descriptor length: bin means along a column (row)
CANDIDATES = 6  # other scenes' columns (rows) verified at most per first column (row)
#: Scenes without a CRS searched at most (thumbnails of 16 KiB each are made only then);
#: beyond, the tile step warns. The search's time grows linearly, about 20 ms a scene on a
#: busy 2-core machine (benchmarks/crop_search.py: 5,000 in 72 s at load 2, 20,000 in 390 s
#: and 460 MB at load 4.5 to 2.2), within the data steps' 2 GiB.
MAX_SCENES = 20_000
RATIO = 0.4  # best overlap error / error at a clearly wrong offset, at most


class CropSearchWarning(UserWarning):
    """Too many scenes without a CRS to look for crops of one image among them."""


@dataclass
class Thumbnail:
    """A scene's band-mean thumbnail: (h, w) float32, NaN where the scene has no data."""
    name: str
    width: int
    height: int
    bands: int
    pixels: np.ndarray


def read_thumbnail(name: str, src, path) -> Thumbnail | None:
    """The thumbnail of an open scene; None for scenes under 8 pixels on a side."""
    width, height = src.width, src.height
    if width < 8 or height < 8:
        return None
    factor = max(1, math.ceil(max(width, height) / THUMB))
    shape = (src.count, max(1, height // factor), max(1, width // factor))
    block = read_window(src, path, out_shape=shape, resampling=Resampling.average)
    pixels = block.astype(np.float32).mean(axis=0)
    pixels[invalid_pixels(block, band_nodata(src))] = np.nan
    # A 2x2 moving average: detail finer than the thumbnail's pixels (field rows, say)
    # otherwise aliases, and crops offset by a fraction of a pixel would not match.
    pixels = (pixels[:-1, :-1] + pixels[1:, :-1] + pixels[:-1, 1:] + pixels[1:, 1:]) / 4
    return Thumbnail(name, width, height, src.count, pixels)


def _descriptors(lines: np.ndarray) -> np.ndarray:
    """(n, length) lines -> (n, BINS) bin means (NaN bins where a whole bin is nodata)."""
    bins = np.array_split(np.arange(lines.shape[1]), min(BINS, lines.shape[1]))
    with quiet():
        return np.stack([np.nanmean(lines[:, b], axis=1) for b in bins], axis=1)


def _error(a: np.ndarray, b: np.ndarray, dx: int, dy: int) -> tuple[float, float]:
    """Mean |b[y, x] - a[y + dy, x + dx]| over their overlap, and the share of it valid."""
    h, w = a.shape
    ya, yb = slice(max(0, dy), min(h, h + dy)), slice(max(0, -dy), min(h, h - dy))
    xa, xb = slice(max(0, dx), min(w, w + dx)), slice(max(0, -dx), min(w, w - dx))
    diff = np.abs(a[ya, xa] - b[yb, xb])
    valid = np.isfinite(diff)
    if diff.size == 0 or not valid.any():
        return math.inf, 0.0
    return float(diff[valid].mean()), float(valid.mean())


def _half_shifted(a: np.ndarray, tx: bool, ty: bool) -> np.ndarray:
    """``a`` moved by half a pixel left (``tx``) and/or up (``ty``), by linear interpolation:
    crops whose offset is not a multiple of the thumbnail's block size fall between two."""
    if tx:
        a = np.concatenate([(a[:, :-1] + a[:, 1:]) / 2, np.full_like(a[:, :1], np.nan)], 1)
    if ty:
        a = np.concatenate([(a[:-1] + a[1:]) / 2, np.full_like(a[:1], np.nan)], 0)
    return a


def _match_ratio(shifted: list[np.ndarray], b: np.ndarray, column: int, last: int) -> float:
    """How much better b's overlap with a matches with b's first column at column ``column``
    of a (``shifted``: a and its half-pixel shifts; within one column, two rows, in
    half-pixel steps) than at offsets two or more columns or rows away: the error ratio,
    inf when under half the overlap is valid. A crop of a is well under RATIO."""
    a = shifted[0]
    width = a.shape[1]
    best, share = min((_error(variant, b, dx, dy) for variant in shifted
                       for dx in range(column - 1, column + 2) if 1 <= dx <= last
                       for dy in range(-2, 3)), default=(math.inf, 0.0))
    if share < 0.5 or not math.isfinite(best):
        return math.inf
    wrong = [_error(a, b, dx, dy)[0]
             for dx, dy in ((column - 3, 0), (column + 3, 0), (column, -4), (column, 4),
                            (column - 3, -4), (column + 3, 4))
             if 1 <= dx <= width - 2]
    control = min((e for e in wrong if math.isfinite(e)), default=math.inf)
    return best / control if math.isfinite(control) and control > 0 else math.inf


def _column_pairs(thumbs: list[Thumbnail], transpose: bool) -> list[tuple[str, str]]:
    """(A, B) where B's first column (row when ``transpose``) repeats inside A."""
    # Here, not at module import: every segpipe command (--help included) imports the tile
    # step's module, and scipy.spatial takes 0.2-0.4 s.
    from scipy.spatial import cKDTree

    images = [t.pixels.T if transpose else t.pixels for t in thumbs]
    width = images[0].shape[1]
    if width < 8:
        return []
    last = width - max(2, width // 8)  # an overlap of at least an eighth of the width
    interior = np.arange(1, last + 1)
    points, owners = [], []
    for k, img in enumerate(images):
        # Columns halfway between two as well: crops offset by an odd number of pixels
        # fall between the thumbnail's columns.
        halfway = (img[:, interior] + img[:, interior + 1]) / 2
        points += [_descriptors(img[:, interior].T), _descriptors(halfway.T)]
        owners += [np.stack([np.full(len(interior), k), interior], axis=1)] * 2
    points, owners = np.concatenate(points), np.concatenate(owners)
    usable = np.isfinite(points).all(axis=1)
    tree = cKDTree(points[usable])
    owners = owners[usable]
    firsts = _descriptors(np.stack([img[:, 0] for img in images]))
    seconds = _descriptors(np.stack([img[:, 2] for img in images]))
    # The scene's own columns next to its first one can be the nearest (smooth imagery).
    k = min(len(owners), 2 * CANDIDATES + 8)
    pairs = []
    for b, (first, second) in enumerate(zip(firsts, seconds, strict=True)):
        if not np.isfinite(first).all() or np.nanstd(images[b][:, 0]) == 0:
            continue  # a nodata or blank edge: nothing to recognise
        # Per query, not for the whole search: kept for every scene they would take 64 KiB
        # each (320 MB for 5,000 scenes), and making them costs little beside the checks.
        shifted: dict[int, list[np.ndarray]] = {}
        own = float(np.abs(first - second).mean()) if np.isfinite(second).all() else math.inf
        distances, hits = tree.query(first, k=k, p=1)
        seen, tried = set(), 0
        for distance, hit in zip(np.atleast_1d(distances), np.atleast_1d(hits), strict=True):
            if hit >= len(owners) or not distance / BINS < own:
                break  # sorted by distance: the rest are no closer than B's own column
            a, column = int(owners[hit][0]), int(owners[hit][1])
            if a == b or a in seen:
                continue
            tried += 1
            if tried > CANDIDATES:
                break
            if a not in shifted:
                shifted[a] = [_half_shifted(images[a], tx, ty)
                              for tx in (False, True) for ty in (False, True)]
            if _match_ratio(shifted[a], images[b], column, last) < RATIO:
                seen.add(a)
                pairs.append((thumbs[a].name, thumbs[b].name))
    return pairs


def find_overlaps(thumbs: list[Thumbnail]) -> dict[str, set[str]]:
    """Scene name -> names of scenes whose content overlaps it (same size and band count)."""
    out: dict[str, set[str]] = defaultdict(set)
    groups: dict[tuple, list[Thumbnail]] = defaultdict(list)
    for t in thumbs:
        groups[(t.width, t.height, t.bands, t.pixels.shape)].append(t)
    for group in groups.values():
        if len(group) < 2:
            continue
        for transpose in (False, True):
            for a, b in _column_pairs(group, transpose):
                out[a].add(b)
                out[b].add(a)
    return out


def crop_search_warning(crs_less: int, overlaps_searched: bool,
                        touching_unsearched: int) -> str | None:
    """One line saying which searches for crops of one image were skipped, what that risks
    and what to do instead; None when neither was."""
    skipped = []
    if not overlaps_searched:
        skipped.append(f"overlapping crops of one image were not searched for (at most "
                       f"{MAX_SCENES:,} scenes)")
    if touching_unsearched:
        skipped.append(f"touching crops were not searched for among "
                       f"{touching_unsearched:,} scenes of one size (at most "
                       f"{MAX_TOUCHING_SCENES:,})")
    if not skipped:
        return None
    return (f"{crs_less:,} scenes without a CRS: {'; '.join(skipped)}, so crops of one image "
            "may land in different splits (testing on pixels seen in training); use "
            "split.strategy 'group' with a group_by that keeps the crops of one image "
            "together, or georeferenced scenes with strategy 'block'")
