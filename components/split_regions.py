"""Which pixels of which scenes a split scores at scene level.

A scene whose tiles are all in the split is scored whole; one only partly in it (``block``
and ``random`` splits) is scored inside the split's tiles and outside every tile of another
split, so no pixel the model trained or was selected on is scored. Tiles are on the tiled
(possibly resampled) grid; a native pixel belongs to a tile when its centre falls inside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.artifacts import SplitName
from components.dataset_paths import PreparedDataset


class SceneEvaluationError(ValueError):
    """A scene that cannot be scored; the message names the file and the problem."""


@dataclass(frozen=True)
class ScenePart:
    """One scene to score: all of it (``include`` None), or the pixels inside ``include``
    and outside ``exclude`` (tile windows on the tiled grid)."""

    name: str
    include: list[tuple[int, int, int, int]] | None
    exclude: list[tuple[int, int, int, int]]


def split_scenes(dataset: PreparedDataset, split: SplitName) -> list[ScenePart]:
    """The scenes with tiles in ``split``, in manifest order, and which of their pixels
    belong to it (from the split manifest's tile ids, whatever the strategy). A scene is
    scored whole only when every one of its tiles is in ``split``: the tiles of other splits
    and those the split step left out (``drop_overlaps``: ground shared with a train tile)
    are excluded."""
    split_of = {tile_id: name for name, ids in dataset.split_manifest.splits.items()
                for tile_id in ids}
    inside: dict[str, list] = {}
    outside: dict[str, list] = {}
    for tile in dataset.tile_manifest.tiles:
        kept = split_of.get(tile.id) == split
        (inside if kept else outside).setdefault(tile.scene, []).append(tile.window)
    return [ScenePart(scene.name, inside[scene.name] if scene.name in outside else None,
                      outside.get(scene.name, []))
            for scene in dataset.tile_manifest.scenes if scene.name in inside]


def check_scene_files(dataset: PreparedDataset, split: SplitName) -> None:
    """Every scene of ``split`` has its ingested image and mask: checked before any work."""
    folder = Path(dataset.scenes_dir)
    missing = [path.name for part in split_scenes(dataset, split)
               for path in scene_paths(folder, part.name) if not path.is_file()]
    if missing:
        raise SceneEvaluationError(
            f"{folder}: scene-level evaluation needs the ingested scenes of the {split} split "
            f"(the ingest step's scenes/ folder); missing {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))


def scene_paths(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / f"{name}_image.tif", folder / f"{name}_mask.tif"


def native_rects(windows: list[tuple[int, int, int, int]], tiled: tuple[int, int],
                  native: tuple[int, int]) -> np.ndarray:
    """Tile windows (col, row, w, h on the tiled grid) -> (N, 4) native Rects
    (components/scene_repeats.py): the native
    pixels whose centres fall inside, clipped to the scene."""
    if not windows:
        return np.zeros((0, 4), np.int64)
    fy, fx = native[0] / tiled[0], native[1] / tiled[1]
    w = np.asarray(windows, np.float64)
    # Pixel j's centre (j + 0.5) / f lies in [a, b) for j in [ceil(a f - .5), ceil(b f - .5)).
    rows = np.ceil(np.stack([w[:, 1], w[:, 1] + w[:, 3]], 1) * fy - 0.5)
    cols = np.ceil(np.stack([w[:, 0], w[:, 0] + w[:, 2]], 1) * fx - 0.5)
    rects = np.concatenate([np.clip(rows, 0, native[0]), np.clip(cols, 0, native[1])], 1)
    return rects.astype(np.int64)


def region_mask(include: np.ndarray, exclude: np.ndarray, row: int, col: int, height: int,
                 width: int) -> np.ndarray:
    """Which pixels of a block (at row, col) are inside ``include`` and outside ``exclude``."""
    keep = np.zeros((height, width), bool)
    for rects, value in ((include, True), (exclude, False)):
        hit = ((rects[:, 0] < row + height) & (rects[:, 1] > row)
               & (rects[:, 2] < col + width) & (rects[:, 3] > col))
        for r0, r1, c0, c1 in rects[hit] - (row, row, col, col):
            keep[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = value
    return keep
