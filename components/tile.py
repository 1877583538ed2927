"""Tile: standardized scenes -> fixed-size GeoTIFF patches plus a manifest.

Every patch is one windowed read (optionally resampled: Lanczos for images, nearest for
masks), so memory is bounded by the patch size, never the scene size. Windows that run past
the scene edge are padded (image: nodata, mask: ignore), and scenes smaller than a patch give
one padded tile. Patches whose valid (non-nodata, non-NaN) fraction of the in-scene area is
below ``min_valid_fraction`` are dropped."""

from __future__ import annotations

import os
import shutil
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine
from rasterio.windows import Window

from components.artifacts import (
    ClassMap,
    DatasetPaths,
    SceneInfo,
    TileManifest,
    TileRecord,
    tile_paths,
)
from components.atomic import write_text
from components.raster import (
    GDAL_CACHE_MB,
    DataError,
    ProgressCallback,
    crs_string,
    invalid_pixels,
    open_raster,
    write_array,
)


class TileOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patch_size: int = Field(default=256, ge=8, le=8192)
    stride: int | None = Field(default=None, ge=1, description="None = patch_size (no overlap)")
    scale: float = Field(default=1.0, gt=0, le=16, description="resampling factor, 0.5 halves")
    min_valid_fraction: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _stride_fits(self) -> TileOptions:
        if self.stride is not None and self.stride > self.patch_size:
            raise ValueError(f"stride {self.stride} > patch_size {self.patch_size} would skip "
                             "pixels")
        return self

    @property
    def step(self) -> int:
        return self.stride or self.patch_size


def grid_offsets(size: int, patch: int, stride: int) -> list[int]:
    """Patch offsets along one axis covering ``size`` pixels; the last may run past the edge."""
    if size <= patch:
        return [0]
    offsets = list(range(0, size - patch + 1, stride))
    if offsets[-1] + patch < size:
        offsets.append(offsets[-1] + stride)
    return offsets


def scene_names(scenes_dir: Path) -> list[str]:
    names = sorted(p.name[: -len("_image.tif")] for p in scenes_dir.glob("*_image.tif"))
    if not names:
        raise DataError(f"{scenes_dir}: no <scene>_image.tif files to tile")
    return names


def _common_dtype_and_nodata(scenes_dir: Path, names: list[str]) -> tuple[np.dtype, float | None]:
    dtypes, nodata = [], None
    for name in names:
        with open_raster(scenes_dir / f"{name}_image.tif") as src:
            dtypes.append(np.dtype(src.dtypes[0]))
            if nodata is None:
                nodata = src.nodata
    return np.result_type(*dtypes), nodata


def _fill_value(dtype: np.dtype, nodata: float | None) -> float:
    if nodata is not None:
        return nodata
    return float("nan") if np.issubdtype(dtype, np.floating) else 0


class _TileWriter:
    """Writes tiles on a few threads while the caller reads the next windows: GDAL releases
    the GIL while it compresses and writes. At most ``2 * threads`` tiles wait in memory."""

    def __init__(self, threads: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="tile-writer")
        self.pending: deque[Future] = deque()
        self.limit = 2 * threads

    def submit(self, path: Path, array: np.ndarray, crs, transform, nodata) -> None:
        while len(self.pending) >= self.limit:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(write_array, path, array, crs, transform,
                                             nodata, False))

    def close(self) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _tile_scene(name: str, scenes_dir: Path, tiles_dir: Path, options: TileOptions,
                classes: ClassMap, dtype: np.dtype,
                writer: _TileWriter) -> tuple[SceneInfo, list[TileRecord]]:
    patch, scale = options.patch_size, options.scale
    resample = scale != 1.0
    with open_raster(scenes_dir / f"{name}_image.tif") as img, \
            open_raster(scenes_dir / f"{name}_mask.tif") as msk:
        width, height = max(1, round(img.width * scale)), max(1, round(img.height * scale))
        transform = img.transform @ Affine.scale(img.width / width, img.height / height)
        info = SceneInfo(name=name, width=width, height=height, crs=crs_string(img.crs),
                         transform=tuple(transform)[:6])
        nodata = img.nodata
        denominator = min(patch, width) * min(patch, height)
        records = []
        for row in grid_offsets(height, patch, options.step):
            for col in grid_offsets(width, patch, options.step):
                w, h = min(patch, width - col), min(patch, height - row)
                src_window = Window(col * img.width / width, row * img.height / height,
                                    w * img.width / width, h * img.height / height)
                block = img.read(window=src_window, out_shape=(img.count, h, w),
                                 resampling=Resampling.lanczos if resample
                                 else Resampling.nearest)
                labels = msk.read(1, window=src_window, out_shape=(h, w),
                                  resampling=Resampling.nearest)
                invalid = invalid_pixels(block, nodata)
                valid_fraction = min(1.0, float((~invalid).sum()) / denominator)
                if valid_fraction < options.min_valid_fraction:
                    continue
                labels[invalid] = classes.ignore_index
                image = np.full((img.count, patch, patch), _fill_value(dtype, nodata), dtype)
                image[:, :h, :w] = block
                mask = np.full((patch, patch), classes.ignore_index, np.uint8)
                mask[:h, :w] = labels
                tile_id = f"{name}__r{row:06d}_c{col:06d}"
                tile_transform = transform @ Affine.translation(col, row)
                image_path, mask_path = tile_paths(tiles_dir, tile_id)
                writer.submit(image_path, image, img.crs, tile_transform, nodata)
                writer.submit(mask_path, mask, img.crs, tile_transform, classes.ignore_index)
                counts = np.bincount(labels[labels != classes.ignore_index].ravel(),
                                     minlength=classes.num_classes)
                records.append(TileRecord(
                    id=tile_id, scene=name, window=(col, row, patch, patch),
                    transform=tuple(tile_transform)[:6], valid_fraction=valid_fraction,
                    class_counts={i: int(n) for i, n in enumerate(counts.tolist()) if n}))
    return info, records


def tile_scenes(ingested_dir: Path, out_dir: Path, options: TileOptions | None = None,
                progress: ProgressCallback | None = None) -> TileManifest:
    """Tile ``ingested_dir/scenes`` into ``out_dir/tiles`` and write ``out_dir/tiles.json``
    (last, so its presence marks finished tiles) and ``out_dir/classes.json``."""
    options = options or TileOptions()
    src, dst = DatasetPaths(ingested_dir), DatasetPaths(out_dir)
    classes = ClassMap.load(src.classes)
    names = scene_names(src.scenes_dir)
    dtype, nodata = _common_dtype_and_nodata(src.scenes_dir, names)
    if dst.tiles_dir.exists():
        shutil.rmtree(dst.tiles_dir)  # stale tiles from an earlier run must not linger
    dst.tiles_dir.mkdir(parents=True)
    scenes, tiles, bands = [], [], None
    writer = _TileWriter(threads=min(4, os.cpu_count() or 1))
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain JPEG/PNG scenes
        try:
            for i, name in enumerate(names):
                info, records = _tile_scene(name, src.scenes_dir, dst.tiles_dir, options,
                                            classes, dtype, writer)
                scenes.append(info)
                tiles.extend(records)
                if bands is None:
                    with open_raster(src.scenes_dir / f"{name}_image.tif") as img:
                        bands = img.count
                if progress:
                    progress("tile", i + 1, len(names))
        finally:
            writer.close()
    if not tiles:
        raise DataError(f"{src.scenes_dir}: no tile has a valid fraction >= "
                        f"{options.min_valid_fraction}; lower min_valid_fraction")
    manifest = TileManifest(patch_size=options.patch_size, stride=options.step,
                            scale=options.scale, bands=bands, dtype=str(dtype), nodata=nodata,
                            scenes=scenes, tiles=tiles)
    if dst.classes != src.classes:
        classes.save(dst.classes)
    # pydantic's own JSON writer: the generic dict round trip of ``save`` would briefly hold
    # three copies of a manifest with thousands of tiles.
    write_text(dst.tiles_manifest, manifest.model_dump_json(indent=2) + "\n")
    return manifest
