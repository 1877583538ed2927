"""Identical tiles of georeferenced scenes that overlap: kept once.

Chips cut from one survey with overlap (the tea-plantation chips overlap by half) give
tiles of the same ground that are pixel for pixel the same: 44 tiles of 128 px covered 19
distinct footprints, so the split's sizes overstated the data, a test pixel was scored up to
4 times and training weighted repeated ground more. A tile whose footprint (same CRS, pixel
size and origin in pixels, so the same bounds: every tile has the patch size) and whose
pixels and labels equal those of a tile kept before it is dropped, its files deleted. Tiles
of the same ground with other pixels (another date, another sensor) stay: they are more
data. The rule is components/same_ground.py's, which scene-level scoring applies to
overlapping scenes too.

Only tiles sharing a footprint are read again, so scenes that do not overlap cost nothing."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from components.artifacts import SceneInfo, TileRecord
from components.dataset_paths import read_tile, tile_paths
from components.same_ground import content_digest, footprint_key, grid_offset


class DuplicateTilesWarning(UserWarning):
    """Identical tiles of overlapping scenes were dropped."""


def _content(tiles_dir: Path, tile_id: str) -> str:
    return content_digest(*read_tile(tiles_dir, tile_id))


def drop_identical_tiles(tiles: list[TileRecord], scenes: list[SceneInfo],
                         tiles_dir: Path) -> tuple[list[TileRecord], int]:
    """``tiles`` without those identical to an earlier one on the same georeferenced
    footprint (their files deleted from ``tiles_dir``), and how many were dropped."""
    crs = {s.name: s.crs for s in scenes}
    by_footprint: dict[tuple, list[TileRecord]] = defaultdict(list)
    for tile in tiles:
        if crs.get(tile.scene):
            by_footprint[footprint_key(crs[tile.scene], tile.transform)].append(tile)
    dropped: set[str] = set()
    for group in by_footprint.values():
        if len(group) < 2:
            continue
        seen: dict[str, list[TileRecord]] = defaultdict(list)
        for tile in group:
            content = _content(tiles_dir, tile.id)
            crs_tile = crs[tile.scene]
            if any(grid_offset(crs[kept.scene], kept.transform, crs_tile, tile.transform)
                   == (0, 0) for kept in seen[content]):
                dropped.add(tile.id)
                for path in tile_paths(tiles_dir, tile.id):
                    Path(path).unlink()
            else:
                seen[content].append(tile)
    return [t for t in tiles if t.id not in dropped], len(dropped)


def duplicates_line(total: int, dropped: int) -> str:
    """The one line that says so."""
    return (f"{total} tiles, {dropped} identical to others dropped: {total - dropped} "
            f"distinct (overlapping scenes hold the same ground with the same pixels)")
