"""Ground that overlapping scenes repeat with the same pixels: counted at most once.

Chips cut from one survey with overlap (the tea-plantation chips overlap their neighbours
by half) hold the same ground more than once. The tile step keeps such tiles once, the
first scene's (components/tile_duplicates.py), and the split puts that tile in one split; a
scene scored whole would still count the ground once per scene, and a test scene would
count ground whose kept tile is another scene's, maybe a train tile. Here the window of a
scored scene that an earlier scene of the dataset (in manifest order, any split) holds too,
on one pixel grid, is compared cell by cell, a cell being one of the scene's tiles (the
dataset's patch size on the scene's native grid, from its origin), by the tile step's rule
(components/same_ground.py): a cell whose image pixels and labels are the earlier scene's is
left out of this scene's scores. The ground counts where the tile step kept it: with the
earlier scene, in this split (scored once) or in another (not scored here). A label edited
on one chip keeps its cell counted in both, as the tile step keeps its tile; another date of
the same ground (other pixels) is scored in full. Scenes without a CRS are never compared.

Only the overlap windows are read, in strips of at most ``STRIP_VALUES`` values from each
scene (a cell too large for one strip, as a resampled scene's native cell can be, is compared
strip by strip), under the data plane's GDAL cache cap: memory is bounded by the strip, the
cache and one flag per cell, never by the scenes or their cells
(benchmarks/scene_repeats.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from components.raster import STEP_DRIVER, gdal_env
from components.same_ground import grid_offset, pixel_size_key, same_content

#: (row0, row1, col0, col1) on a scene's native grid, end-exclusive.
Rect = tuple[int, int, int, int]

#: Values (pixels x bands) of one strip read from each scene while comparing an overlap.
STRIP_VALUES = 1 << 22


class RepeatedGroundWarning(UserWarning):
    """Overlapping scenes hold the same ground with the same pixels: left out of the later
    scene, scored once with the earlier one when it is in the split."""


#: Which pixels scene-level scores count, recorded on each registered version
#: (components/champion_gate.py): a champion scored under another rule (or before the
#: record) scored other pixels of the same split, so it is re-scored, never compared. Change
#: it whenever the rule here or in components/scene_evaluation.py changes which pixels count.
SCENE_SCORING = "repeats-once-v1"


@dataclass(frozen=True)
class SceneGrid:
    """An ingested scene's files and native grid (``crs`` None: not georeferenced), and the
    side of its cells (its tiles' footprint on that grid, from the scene's origin)."""

    name: str
    image: Path
    mask: Path
    crs: str | None
    transform: tuple[float, ...]
    height: int
    width: int
    cell: int


@dataclass(frozen=True)
class Repeat:
    """Scene ``earlier`` (an index into the scenes compared) holds the ground of ``rect`` of
    a scene, on one grid: the scene's first pixel lies at ``offset`` (row, col) on the
    earlier scene's grid. ``same`` flags the scene's cells of side ``cell`` from
    (``rect[0] // cell``, ``rect[2] // cell``) on whose pixels and labels inside ``rect``
    are the earlier scene's."""

    earlier: int
    rect: Rect
    offset: tuple[int, int]
    cell: int
    same: np.ndarray

    def mask(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Which pixels of a block (at row, col) of the scene are repeated ground."""
        r0, r1, c0, c1 = self.rect
        rows, cols = np.arange(row, row + height), np.arange(col, col + width)
        inside = ((rows >= r0) & (rows < r1))[:, None] & ((cols >= c0) & (cols < c1))[None]
        if not inside.any():
            return inside
        ny, nx = self.same.shape
        cell_rows = np.clip(rows // self.cell - r0 // self.cell, 0, ny - 1)
        cell_cols = np.clip(cols // self.cell - c0 // self.cell, 0, nx - 1)
        return inside & self.same[np.ix_(cell_rows, cell_cols)]


def _grid_group(scene: SceneGrid) -> tuple:
    """Scenes that may share a pixel grid: one CRS, pixel size and rotation."""
    return scene.crs, pixel_size_key(scene.transform)


def _candidates(scenes: list[SceneGrid], later: set[int] | None) -> list[tuple[int, int]]:
    """(earlier, later) index pairs of georeferenced scenes whose footprints may overlap,
    the later one of ``later`` (None: any), from their bounds on the first scene of their
    group's grid (vectorized per scene)."""
    groups: dict[tuple, list[int]] = {}
    for index, scene in enumerate(scenes):
        if scene.crs:
            groups.setdefault(_grid_group(scene), []).append(index)
    pairs = []
    for members in groups.values():
        if len(members) < 2:
            continue
        reference = rasterio.Affine(*scenes[members[0]].transform[:6])
        inverse = ~reference
        boxes = np.array([[*(inverse @ (scenes[i].transform[2], scenes[i].transform[5]))[::-1],
                           scenes[i].height, scenes[i].width] for i in members], np.float64)
        rows, cols, heights, widths = boxes.T
        for j in range(1, len(members)):
            if later is not None and members[j] not in later:
                continue
            hit = ((rows[:j] < rows[j] + heights[j] - 0.5) & (rows[j] < rows[:j] + heights[:j]
                                                              - 0.5)
                   & (cols[:j] < cols[j] + widths[j] - 0.5) & (cols[j] < cols[:j] + widths[:j]
                                                               - 0.5))
            pairs += [(members[i], members[j]) for i in np.flatnonzero(hit)]
    return sorted(pairs, key=lambda pair: (pair[1], pair[0]))


def _overlap(earlier: SceneGrid, later: SceneGrid, offset: tuple[int, int]) -> Rect | None:
    """The later scene's window over the earlier one's footprint, on the later's grid."""
    dr, dc = offset
    r0, r1 = max(0, -dr), min(later.height, earlier.height - dr)
    c0, c1 = max(0, -dc), min(later.width, earlier.width - dc)
    return (r0, r1, c0, c1) if r0 < r1 and c0 < c1 else None


def _same_cells(earlier: SceneGrid, later: SceneGrid, rect: Rect,
                offset: tuple[int, int]) -> np.ndarray:
    """Which of the later scene's cells over ``rect`` hold the earlier scene's image pixels
    and labels there, a row of cells at a time, read in strips of at most ``STRIP_VALUES``
    values from each scene (whole cells side by side when a cell fits; else rows of one
    cell, their verdicts ANDed: a resampled scene's native cell may be thousands of px)."""
    r0, r1, c0, c1 = rect
    dr, dc, cell = *offset, later.cell
    first_row, first_col = r0 // cell, c0 // cell
    same = np.zeros(((r1 - 1) // cell + 1 - first_row, (c1 - 1) // cell + 1 - first_col), bool)
    # GDAL's block cache capped as in every data-plane step: uncapped, it holds 5% of RAM.
    with gdal_env(), rasterio.open(earlier.image, driver=STEP_DRIVER) as image_a, \
            rasterio.open(earlier.mask, driver=STEP_DRIVER) as mask_a, \
            rasterio.open(later.image, driver=STEP_DRIVER) as image_b, \
            rasterio.open(later.mask, driver=STEP_DRIVER) as mask_b:
        if image_a.count != image_b.count:
            return same
        values = image_a.count + 1  # per pixel: the bands and the label
        chunk = max(1, STRIP_VALUES // (cell * cell * values))  # cells side by side
        for i in range(same.shape[0]):
            top = max(r0, (first_row + i) * cell)
            bottom = min(r1, (first_row + i + 1) * cell)
            for j0 in range(0, same.shape[1], chunk):
                cells = slice(j0, min(j0 + chunk, same.shape[1]))
                left = max(c0, (first_col + j0) * cell)
                right = min(c1, (first_col + j0 + chunk) * cell)
                same[i, cells] = True
                step = max(1, STRIP_VALUES // ((right - left) * values))  # rows a strip
                for row in range(top, bottom, step):
                    if not same[i, cells].any():
                        break
                    height = min(step, bottom - row)
                    window_b = Window(left, row, right - left, height)
                    window_a = Window(left + dc, row + dr, right - left, height)
                    a = image_a.read(window=window_a), mask_a.read(1, window=window_a)
                    b = image_b.read(window=window_b), mask_b.read(1, window=window_b)
                    for j in range(cells.start, cells.stop):
                        lo = max(left, (first_col + j) * cell) - left
                        hi = min(right, (first_col + j + 1) * cell) - left
                        same[i, j] &= same_content(a[0][..., lo:hi], a[1][:, lo:hi],
                                                   b[0][..., lo:hi], b[1][:, lo:hi])
    return same


def find_repeats(scenes: list[SceneGrid], later: set[int] | None = None
                 ) -> list[list[Repeat]]:
    """For each scene (of ``later``, by index; None: all), the cells of its windows that an
    earlier scene holds with the same pixels and labels (on one pixel grid,
    components/same_ground.py); empty lists for the others, scenes without a CRS and scenes
    without such cells."""
    repeats: list[list[Repeat]] = [[] for _ in scenes]
    for i, j in _candidates(scenes, later):
        first, second = scenes[i], scenes[j]
        offset = grid_offset(first.crs, first.transform, second.crs, second.transform)
        if offset is None or (rect := _overlap(first, second, offset)) is None:
            continue
        same = _same_cells(first, second, rect, offset)
        if same.any():
            repeats[j].append(Repeat(i, rect, offset, second.cell, same))
    return repeats


def repeated_mask(repeats: list[Repeat], row: int, col: int, height: int,
                  width: int) -> np.ndarray:
    """Which pixels of a block (at row, col) of a scene earlier scenes hold."""
    repeated = np.zeros((height, width), bool)
    for repeat in repeats:
        repeated |= repeat.mask(row, col, height, width)
    return repeated


def repeats_line(split: str, skipped: list[tuple[str, int, list[str]]], scored_earlier: int,
                 other_split: int) -> str:
    """The one line that says so: ``skipped`` holds (scene, pixels left out, the earlier
    scenes that hold them, those of another split named so) for each scene of ``split``
    with repeated ground; of all those pixels, ``scored_earlier`` are scored with an earlier
    scene of the split and ``other_split`` are another split's ground, scored nowhere here."""
    total = sum(pixels for _, pixels, _ in skipped)
    shown = "; ".join(f"{pixels} px of {scene} repeat {', '.join(earlier)}"
                      for scene, pixels, earlier in skipped[:3])
    more = f"; and {len(skipped) - 3} more scenes" if len(skipped) > 3 else ""
    return (f"{total} px of the {split} split's scenes repeat earlier scenes' ground with the "
            f"same pixels and labels, left out where the tile step left out their tiles: "
            f"{scored_earlier} px scored once, with an earlier scene of this split, and "
            f"{other_split} px another split's ground, not scored here ({shown}{more})")
