"""Where each tile lies on the ground, placed so that the split can compare tiles of
different scenes: in-scene footprints for the overlap drop (components/split.py) and patch
centres for the blocks (components/split_units.py).

- Every scene in one CRS (the usual case): the tiles' map coordinates as they are.
- Georeferenced scenes in several CRSs: the frame is the CRS most scenes use (of those tied,
  the first scene's), and the tiles of the other scenes are reprojected into it: their
  outline, ``EDGE_POINTS`` points a side, so a tile turned by the reprojection (meridian
  convergence) keeps its shape. A reprojected outline is approximate, and a scene reprojected
  onto another grid covers a fringe of nodata past its data, so ground it shares with another
  tile counts only where that ground is at least one of its pixels wide (``shares_ground``):
  tiles that merely touch stay, tiles that share a strip or more are found.
- Scenes without a CRS, or whose ground cannot be placed in the frame's CRS (outside the
  area where it is defined): each in its own pixels, compared only with itself."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.warp import transform as transform_points

from components.artifacts import SceneInfo, TileManifest, TileRecord
from components.vector_info import crs_text
from components.wording import counted

WORLD = "world"  # the space of tiles placed in the frame's CRS
EDGE_POINTS = 9  # points along each side of a reprojected outline, corners included


class Footprint(NamedTuple):
    """A tile's in-scene ground: its bounds in ``space`` (WORLD: map units of the frame's CRS;
    else a scene's pixels), and for a reprojected tile its outline and one of its pixels' size
    there (``pixel``). A tuple: made for every tile, as fast as the bounds alone."""

    space: str
    x0: float
    y0: float
    x1: float
    y1: float
    outline: shapely.Polygon | None = None
    pixel: float = 0.0


@dataclass(frozen=True)
class GroundFrame:
    """The CRS tiles are compared in (None: no scene has one), the scenes reprojected into
    it, and those left in their own pixels though georeferenced (they could not be placed)."""

    crs: str | None
    reprojected: tuple[str, ...]
    unplaced: tuple[str, ...]

    def space(self, scene: SceneInfo) -> str:
        """WORLD, or the scene's own name for a scene compared only with itself."""
        return WORLD if scene.crs and scene.name not in self.unplaced else scene.name


def _grid(scene: SceneInfo, steps: int = 4) -> np.ndarray:
    """(points, 2) map points on a grid over the scene, its edges and corners included."""
    cols, rows = np.meshgrid(np.linspace(0, scene.width, steps + 1),
                             np.linspace(0, scene.height, steps + 1))
    a, b, c, d, e, f = scene.transform
    return np.stack([a * cols + b * rows + c, d * cols + e * rows + f], axis=-1).reshape(-1, 2)


def reproject_points(frame: str, crs: str, points: np.ndarray) -> np.ndarray:
    """(..., 2) map points of ``crs`` in the ``frame`` CRS; NaN where they have no place there
    (GDAL refuses the whole call for one such point: then all of them)."""
    flat = points.reshape(-1, 2)
    try:
        xs, ys = transform_points(CRS.from_user_input(crs), CRS.from_user_input(frame),
                                  flat[:, 0].tolist(), flat[:, 1].tolist())
    except Exception:  # rasterio raises GDAL's CPLE_* error types (outside the CRS's domain)
        return np.full(points.shape, np.nan)
    return np.stack([xs, ys], axis=-1).reshape(points.shape)


def ground_frame(manifest: TileManifest) -> GroundFrame:
    """The frame of ``manifest``'s tiles (module docstring). A scene is placed in it when a
    grid of points over it, edges and corners included, has a place there."""
    counts = Counter(s.crs for s in manifest.scenes if s.crs)
    if len(counts) < 2:
        return GroundFrame(next(iter(counts), None), (), ())
    frame = max(counts, key=counts.__getitem__)  # max keeps the first of those tied
    reprojected, unplaced = [], []
    for scene in manifest.scenes:
        if scene.crs and scene.crs != frame:
            placed = np.isfinite(reproject_points(frame, scene.crs, _grid(scene))).all()
            (reprojected if placed else unplaced).append(scene.name)
    return GroundFrame(frame, tuple(reprojected), tuple(unplaced))


def _native_and_own(manifest: TileManifest, frame: GroundFrame) -> tuple[set[str], set[str]]:
    """The scenes in the frame's CRS, and those compared only with themselves (the rest are
    reprojected)."""
    native = {s.name for s in manifest.scenes if s.crs and s.crs == frame.crs}
    own = {s.name for s in manifest.scenes if frame.space(s) != WORLD}
    return native, own


def in_scene_size(tile: TileRecord, patch: int, scene: SceneInfo) -> tuple[int, int]:
    """The tile's width and height inside its scene: not the padding past the edge."""
    col, row = tile.window[:2]
    return min(patch, scene.width - col), min(patch, scene.height - row)


def tile_outlines(tiles: list[TileRecord], sizes: list[tuple[int, int]]) -> np.ndarray:
    """(tiles, points, 2) map points around each tile's in-scene part, in its scene's CRS."""
    u = np.linspace(0.0, 1.0, EDGE_POINTS)[:-1]
    ring = np.concatenate([np.stack([u, 0 * u], 1), np.stack([1 + 0 * u, u], 1),
                           np.stack([1 - u, 1 + 0 * u], 1), np.stack([0 * u, 1 - u], 1)])
    wh = np.asarray(sizes, dtype=np.float64)[:, None, :]
    cols, rows = ring[None, :, 0] * wh[..., 0], ring[None, :, 1] * wh[..., 1]
    a, b, c, d, e, f = np.asarray([t.transform for t in tiles], dtype=np.float64).T[..., None]
    return np.stack([a * cols + b * rows + c, d * cols + e * rows + f], axis=-1)


def tile_footprints(manifest: TileManifest, frame: GroundFrame) -> dict[str, Footprint]:
    """Each tile's in-scene footprint, placed as the module docstring says."""
    scenes = {s.name: s for s in manifest.scenes}
    out: dict[str, Footprint] = {}
    foreign: dict[str, list[TileRecord]] = defaultdict(list)
    native, own = _native_and_own(manifest, frame)
    for tile in manifest.tiles:
        scene = scenes[tile.scene]
        if tile.scene in native:
            w, h = in_scene_size(tile, manifest.patch_size, scene)
            a, _, c, _, e, f = tile.transform
            xs, ys = sorted((c, c + a * w)), sorted((f, f + e * h))
            out[tile.id] = Footprint(WORLD, xs[0], ys[0], xs[1], ys[1])
        elif tile.scene in own:
            w, h = in_scene_size(tile, manifest.patch_size, scene)
            col, row = tile.window[:2]
            out[tile.id] = Footprint(tile.scene, col, row, col + w, row + h)
        else:
            foreign[scene.crs].append(tile)
    for crs, tiles in foreign.items():
        sizes = [in_scene_size(t, manifest.patch_size, scenes[t.scene]) for t in tiles]
        rings = reproject_points(frame.crs, crs, tile_outlines(tiles, sizes))
        for tile, (w, h), ring in zip(tiles, sizes, rings, strict=True):
            if not np.isfinite(ring).all():  # a tile past where the frame's CRS is defined
                col, row = tile.window[:2]
                out[tile.id] = Footprint(tile.scene, col, row, col + w, row + h)
                continue
            outline = shapely.Polygon(ring)
            (x0, y0), (x1, y1) = ring.min(axis=0), ring.max(axis=0)
            out[tile.id] = Footprint(WORLD, x0, y0, x1, y1, outline,
                                     math.sqrt(outline.area / (w * h)))
    return out


def shares_ground(a: Footprint, b: Footprint, tolerance: float) -> bool:
    """Whether two footprints of one space share ground: a rectangle wider and higher than
    ``tolerance`` (float noise) for two tiles of one CRS; ground at least one pixel (of the
    coarser reprojected tile) wide when either was reprojected."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    if width <= tolerance or height <= tolerance:
        return False
    if a.outline is None and b.outline is None:
        return True
    outlines = [f.outline if f.outline is not None else shapely.box(f.x0, f.y0, f.x1, f.y1)
                for f in (a, b)]
    # Ground holding a disc one pixel across: a sliver thinner than that is reprojection
    # error or a nodata fringe, not shared pixels.
    shared = outlines[0].intersection(outlines[1])
    return not shared.buffer(-max(a.pixel, b.pixel) / 2 * (1 - 1e-6)).is_empty


def tile_centres(manifest: TileManifest, frame: GroundFrame) -> dict[str, tuple[str, float, float]]:
    """Each tile's patch centre: (WORLD, x, y) in the frame's CRS, or (scene, col, row) in
    its scene's pixels for a tile compared only with its scene's."""
    half = manifest.patch_size / 2
    scenes = {s.name: s for s in manifest.scenes}
    out: dict[str, tuple[str, float, float]] = {}
    foreign: dict[str, list[TileRecord]] = defaultdict(list)
    native, own = _native_and_own(manifest, frame)
    for t in manifest.tiles:
        if t.scene in native:
            a, b, c, d, e, f = t.transform
            out[t.id] = (WORLD, c + a * half + b * half, f + d * half + e * half)
        elif t.scene in own:
            out[t.id] = (t.scene, t.window[0] + half, t.window[1] + half)
        else:
            foreign[scenes[t.scene].crs].append(t)
    for crs, tiles in foreign.items():
        centres = np.asarray([(t.transform[2] + (t.transform[0] + t.transform[1]) * half,
                               t.transform[5] + (t.transform[3] + t.transform[4]) * half)
                              for t in tiles])
        for t, (x, y) in zip(tiles, reproject_points(frame.crs, crs, centres), strict=True):
            out[t.id] = ((WORLD, float(x), float(y)) if math.isfinite(x) and math.isfinite(y)
                         else (t.scene, t.window[0] + half, t.window[1] + half))
    return out


def frame_line(manifest: TileManifest, frame: GroundFrame) -> str | None:
    """The line telling the user that scenes of other CRSs were compared after reprojection
    (or could not be placed); None when every georeferenced scene shares one CRS."""
    if not frame.reprojected and not frame.unplaced:
        return None
    crs_of = {s.name: s.crs for s in manifest.scenes}
    others = sorted({crs_text(crs_of[n]) for n in frame.reprojected + frame.unplaced})
    target = crs_text(frame.crs)
    parts = []
    if frame.reprojected:
        parts.append(f"the tiles of {counted(len(frame.reprojected), 'scene')} in another CRS "
                     f"({', '.join(others)}) were compared with the others in {target}, the "
                     "CRS most scenes use, after reprojecting their footprints: ground they "
                     "share with another split's tiles is found to about a pixel")
    if frame.unplaced:
        names = ", ".join(frame.unplaced[:3]) + (", ..." if len(frame.unplaced) > 3 else "")
        parts.append(f"{counted(len(frame.unplaced), 'scene')} ({names}) could not be placed "
                     f"in {target} (outside where it is defined), so "
                     f"{'its' if len(frame.unplaced) == 1 else 'their'} tiles were compared "
                     "only with their own scene's")
    return "; ".join(parts)
