"""One scene's tiles: its tiling grid after resampling, and reading, checking and writing
the tiles at some of its grid positions (``tile_windows``, run by several threads at once,
each with its own file handles)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.windows import Window

from components.artifacts import ClassMap, TileRecord
from components.dataset_paths import tile_paths
from components.raster import (
    invalid_pixels,
    open_raster,
    read_resampled_window,
    read_window,
)
from components.tile_writer import TileTemplate

if TYPE_CHECKING:
    from components.tile import TileOptions


def grid_offsets(size: int, patch: int, stride: int) -> list[int]:
    """Patch offsets along one axis covering ``size`` pixels; the last may run past the edge."""
    if size <= patch:
        return [0]
    offsets = list(range(0, size - patch + 1, stride))
    if offsets[-1] + patch < size:
        offsets.append(offsets[-1] + stride)
    return offsets


def fill_value(dtype: np.dtype, nodata: float | None) -> float:
    if nodata is not None:
        return nodata
    return float("nan") if np.issubdtype(dtype, np.floating) else 0


@dataclass(frozen=True)
class SceneGrid:
    """One scene's tiling grid (after resampling) and what every tile of it shares."""
    name: str
    image: Path
    mask: Path
    source_size: tuple[int, int]
    width: int
    height: int
    transform: Affine
    crs: object
    nodata: float | None
    bands: int
    dtype: np.dtype
    classes: ClassMap
    options: TileOptions
    image_template: TileTemplate
    mask_template: TileTemplate

    @property
    def resampled(self) -> bool:
        return (self.width, self.height) != self.source_size


def tile_windows(scene: SceneGrid, jobs: list[tuple[int, int]],
                  tiles_dir: Path) -> list[TileRecord]:
    """Read, check and write the tiles at ``jobs`` (row, col) with this thread's handles."""
    patch, ignore = scene.options.patch_size, scene.classes.ignore_index
    fx = scene.source_size[0] / scene.width
    fy = scene.source_size[1] / scene.height
    resampling = Resampling.lanczos if scene.resampled else Resampling.nearest
    records = []
    with open_raster(scene.image) as img, open_raster(scene.mask) as msk:
        for row, col in jobs:
            w, h = min(patch, scene.width - col), min(patch, scene.height - row)
            window = Window(col * fx, row * fy, w * fx, h * fy)
            block = read_resampled_window(img, scene.image, window, (h, w), resampling)
            labels = read_window(msk, scene.mask, indexes=1, window=window, out_shape=(h, w),
                                 resampling=Resampling.nearest)
            labels[invalid_pixels(block, scene.nodata)] = ignore
            counts = np.bincount(labels.ravel(), minlength=256)
            labelled = int(counts.sum() - counts[ignore])
            if labelled == 0 or labelled < scene.options.min_valid_fraction * w * h:
                continue
            if (w, h) != (patch, patch) or block.dtype != scene.dtype:
                image = np.full((scene.bands, patch, patch),
                                fill_value(scene.dtype, scene.nodata), scene.dtype)
                image[:, :h, :w] = block
                mask = np.full((patch, patch), ignore, np.uint8)
                mask[:h, :w] = labels
            else:
                image, mask = block, labels
            tile_id = f"{scene.name}__r{row:06d}_c{col:06d}"
            tile_transform = scene.transform @ Affine.translation(col, row)
            image_path, mask_path = tile_paths(tiles_dir, tile_id)
            scene.image_template.write(image_path, image, tile_transform)
            scene.mask_template.write(mask_path, mask, tile_transform)
            records.append(TileRecord(
                id=tile_id, scene=scene.name, window=(col, row, patch, patch),
                transform=tuple(tile_transform)[:6], valid_fraction=labelled / (w * h),
                class_counts={i: int(n) for i, n in
                              enumerate(counts[: scene.classes.num_classes].tolist()) if n}))
    return records


