"""Which scenes look like crops of one original image: one scene's last column continues
into another's first column (or its last row into the other's first row).

Published datasets often cut large photos into touching crops and ship them as separate,
non-georeferenced files; a scene-level split then puts neighbours in train and test. Each
edge is reduced to profiles of its outer two columns (rows) in ``SAMPLES`` band-mean bins;
two edges are neighbours when each is the other's closest match, the jump across the seam
less the slope inside the edges is no larger than the column-to-column change inside either
scene, and clearly smaller than for the second-best candidate. Constant edges (a blank
border) never match. On synthetic photos cut 3x3 this finds 97% of the seams with no false
pair."""

from __future__ import annotations

import warnings
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from components.raster import invalid_pixels, read_window
from serving.bands import band_nodata

SAMPLES = 64
#: Same-size scenes compared at most: the check is pairwise, n² seams (benchmarks/
#: crop_search.py, load ~1.9 on 2 cores: 5,000 in 19 s and 480 MB peak, 10,000 in 87 s and
#: 1.2 GB; 20,000 would take ~4 GB, past the data steps' 2 GiB). Beyond it the scenes are not
#: compared, and the tile step warns.
MAX_SCENES = 10_000
CHUNK_VALUES = 1 << 21


@contextmanager
def quiet():
    """All-NaN bins (nodata edges) are expected; their means are NaN and skipped."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@dataclass
class Edges:
    """Profiles of a scene's outer two columns and rows: key -> (outer, inner)."""
    name: str
    width: int
    height: int
    sides: dict[str, tuple[np.ndarray, np.ndarray]]


def _profile(block: np.ndarray, nodata, axis: int) -> np.ndarray:
    """(C, H, W) strip, 2 wide along ``axis`` -> two band-mean profiles of SAMPLES bins."""
    values = block.astype(np.float64).mean(axis=0)
    values[invalid_pixels(block, nodata)] = np.nan
    lines = [values.take(i, axis=axis) for i in range(2)]
    out = []
    for line in lines:
        bins = np.array_split(line, min(SAMPLES, len(line)))
        with quiet():
            out.append(np.array([np.nanmean(b) for b in bins]))
    return np.stack(out)


def read_edges(name: str, src, path) -> Edges | None:
    """The edge profiles of an open scene; None for scenes under 4 pixels on a side."""
    width, height = src.width, src.height
    if width < 4 or height < 4:
        return None
    nodata = band_nodata(src)
    windows = {"left": (Window(0, 0, 2, height), 1, False),
               "right": (Window(width - 2, 0, 2, height), 1, True),
               "top": (Window(0, 0, width, 2), 0, False),
               "bottom": (Window(0, height - 2, width, 2), 0, True)}
    sides = {}
    for side, (window, axis, reverse) in windows.items():
        outer_inner = _profile(read_window(src, path, window=window), nodata, axis)
        sides[side] = (outer_inner[1], outer_inner[0]) if reverse else \
            (outer_inner[0], outer_inner[1])
    return Edges(name, width, height, sides)


def _seam(a_outer: np.ndarray, a_slope: np.ndarray, b_outer: np.ndarray,
          b_slope: np.ndarray) -> np.ndarray:
    """(n, m) mean absolute difference between the step across each seam (a's edge to b's)
    and the mean slope just inside the two edges: near the noise for a real continuation."""
    out = np.empty((len(a_outer), len(b_outer)))
    # Rows at a time such that each temporary holds about 2M values (16 MB): a fixed 256
    # rows took 2.6 GB per temporary, 3 GB in all, for 5,000 scenes.
    rows = max(1, CHUNK_VALUES // max(1, len(b_outer) * a_outer.shape[1]))
    for start in range(0, len(a_outer), rows):
        part = slice(start, start + rows)
        jump = b_outer[None, :, :] - a_outer[part, None, :]
        slope = (a_slope[part, None, :] + b_slope[None, :, :]) / 2
        with quiet():
            out[part] = np.nanmean(np.abs(jump - slope), axis=2)
    return out


def _match(scenes: list[Edges], first: str, second: str) -> list[tuple[str, str]]:
    """Pairs whose ``first`` edge (e.g. right) continues into the other's ``second`` (left):
    each is the other's best match, the seam is as smooth as the inside of either scene,
    and the best match is clearly better than the second best (a ratio test)."""
    a_outer = np.stack([s.sides[first][0] for s in scenes])
    a_inner = np.stack([s.sides[first][1] for s in scenes])
    b_outer = np.stack([s.sides[second][0] for s in scenes])
    b_inner = np.stack([s.sides[second][1] for s in scenes])
    seam = _seam(a_outer, a_outer - a_inner, b_outer, b_inner - b_outer)
    np.fill_diagonal(seam, np.inf)
    seam[np.isnan(seam)] = np.inf
    with quiet():
        within_a = np.nanmean(np.abs(a_outer - a_inner), axis=1)
        within_b = np.nanmean(np.abs(b_outer - b_inner), axis=1)
        flat_a = np.nanstd(a_outer, axis=1) == 0
        flat_b = np.nanstd(b_outer, axis=1) == 0
    pairs = []
    for i in range(len(scenes)):
        j = int(np.argmin(seam[i]))
        step = seam[i, j]
        if not np.isfinite(step) or int(np.argmin(seam[:, j])) != i or flat_a[i] or flat_b[j]:
            continue
        second_best = min(np.partition(seam[i], 1)[1], np.partition(seam[:, j], 1)[1]) \
            if len(scenes) > 2 else np.inf
        if step <= 1.5 * max(within_a[i], within_b[j]) + 1e-9 and step <= 0.6 * second_best:
            pairs.append((scenes[i].name, scenes[j].name))
    return pairs


def find_neighbours(edges: list[Edges]) -> tuple[dict[str, set[str]], int]:
    """Scene name -> names of scenes whose edge continues one of its edges; and how many
    scenes were not compared (in a group of over MAX_SCENES of one height or width)."""
    out: dict[str, set[str]] = defaultdict(set)
    unsearched: set[str] = set()
    by_height: dict[int, list[Edges]] = defaultdict(list)
    by_width: dict[int, list[Edges]] = defaultdict(list)
    for e in edges:
        by_height[e.height].append(e)
        by_width[e.width].append(e)
    for groups, first, second in ((by_height, "right", "left"), (by_width, "bottom", "top")):
        for group in groups.values():
            if len(group) > MAX_SCENES:
                unsearched.update(e.name for e in group)
            elif len(group) >= 2:
                for a, b in _match(group, first, second):
                    out[a].add(b)
                    out[b].add(a)
    return dict(out), len(unsearched)
