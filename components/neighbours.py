"""Which scenes look like crops of one original image: one scene's last column continues
into another's first column (or its last row into the other's first row).

Published datasets often cut large photos into touching crops and ship them as separate,
non-georeferenced files; a scene-level split then puts neighbours in train and test. Each
edge is reduced to a profile of ``SAMPLES`` band means; two edges are neighbours when each
is the other's closest match, the step across them is no larger than the step between the
last two columns (or rows) inside each scene, and clearly smaller than the step to the other
candidates. Constant edges (a blank border) never match."""

from __future__ import annotations

import warnings
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from components.raster import invalid_pixels, read_window

SAMPLES = 64
MAX_SCENES = 20_000  # beyond this many same-size scenes the pairwise check is skipped


@contextmanager
def _quiet():
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
        with _quiet():
            out.append(np.array([np.nanmean(b) for b in bins]))
    return np.stack(out)


def read_edges(name: str, src, path) -> Edges | None:
    """The edge profiles of an open scene; None for scenes under 4 pixels on a side."""
    width, height = src.width, src.height
    if width < 4 or height < 4:
        return None
    nodata = src.nodata
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


def _step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean absolute difference between rows of ``a`` (n, S) and rows of ``b`` (m, S)."""
    out = np.empty((len(a), len(b)))
    for start in range(0, len(a), 256):
        diff = np.abs(a[start:start + 256, None, :] - b[None, :, :])
        with _quiet():
            out[start:start + 256] = np.nanmean(diff, axis=2)
    return out


def _match(scenes: list[Edges], first: str, second: str) -> list[tuple[str, str]]:
    """Pairs whose ``first`` edge (e.g. right) continues into the other's ``second`` (left)."""
    a_outer = np.stack([s.sides[first][0] for s in scenes])
    a_inner = np.stack([s.sides[first][1] for s in scenes])
    b_outer = np.stack([s.sides[second][0] for s in scenes])
    b_inner = np.stack([s.sides[second][1] for s in scenes])
    between = _step(a_outer, b_outer)
    np.fill_diagonal(between, np.inf)
    between[np.isnan(between)] = np.inf
    with _quiet():
        within_a = np.nanmean(np.abs(a_outer - a_inner), axis=1)
        within_b = np.nanmean(np.abs(b_outer - b_inner), axis=1)
        flat_a = np.nanstd(a_outer, axis=1) == 0
        flat_b = np.nanstd(b_outer, axis=1) == 0
    pairs = []
    for i in range(len(scenes)):
        j = int(np.argmin(between[i]))
        if not np.isfinite(between[i, j]) or int(np.argmin(between[:, j])) != i:
            continue  # not each other's closest match
        if flat_a[i] or flat_b[j]:
            continue
        step = between[i, j]
        smooth = step <= 1.5 * max(within_a[i], within_b[j]) + 1e-9
        others = np.delete(between[i], [i, j])
        others = others[np.isfinite(others)]
        distinct = len(others) == 0 or step <= 0.5 * float(np.median(others))
        if smooth and distinct:
            pairs.append((scenes[i].name, scenes[j].name))
    return pairs


def find_neighbours(edges: list[Edges]) -> dict[str, set[str]]:
    """Scene name -> names of scenes whose edge continues one of its edges."""
    out: dict[str, set[str]] = defaultdict(set)
    by_height: dict[int, list[Edges]] = defaultdict(list)
    by_width: dict[int, list[Edges]] = defaultdict(list)
    for e in edges:
        by_height[e.height].append(e)
        by_width[e.width].append(e)
    for groups, first, second in ((by_height, "right", "left"), (by_width, "bottom", "top")):
        for group in groups.values():
            if 2 <= len(group) <= MAX_SCENES:
                for a, b in _match(group, first, second):
                    out[a].add(b)
                    out[b].add(a)
    return out
