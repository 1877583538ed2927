"""Scene files in, georeferenced mask or probability files out: a tiled, compressed GeoTIFF
written block by block as the predictor finishes them (serving/scene_output.py), and optional
polygons in the scene's CRS."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.windows import Window

from serving.atomic import atomic_path
from serving.bands import band_dtype, band_nodata, read_bands
from serving.blending import MAX_PANEL_WIDTH
from serving.config import ServingConfig
from serving.image_bands import alpha_tag_warning, band_count_problem, image_bands
from serving.inputs import pixel_warnings, sample_dataset
from serving.pixels import GDAL_CACHE_MB
from serving.polygons import PolygonOptions, write_polygons
from serving.predict import Output, ReadError, ScenePredictor
from serving.quiet import plain_images_quiet
from serving.resolution import (
    ModelGrid,
    resample_factor,
    resampling_note,
    resolution_warning,
    shrink_problem,
)
from serving.scene_output import write_output


class SceneError(ValueError):
    """A scene that cannot be predicted; the message names the file and the problem."""


@dataclass(frozen=True)
class SceneResult:
    mask_path: Path
    polygons_path: Path | None
    width: int
    height: int
    class_pixels: dict[str, int]
    polygon_count: int | None
    polygon_counts: dict[str, int] | None = None  # per class name


#: Largest scene ``predict_scene`` takes by default (pixels of the scene or of its model
#: grid): scenes are streamed, so this only stops a header that claims absurd dimensions.
MAX_SCENE_PIXELS = 4_000_000_000


def predict_scene(predictor: ScenePredictor, input_path: str | os.PathLike, out_path: Path, *,
                  tta: bool = False, overlap: float | None = None,
                  batch_size: int | None = None, polygons_path: Path | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  max_panel_width: int = MAX_PANEL_WIDTH,
                  gdal_cache_mb: int = GDAL_CACHE_MB,
                  region: Window | None = None,
                  max_pixels: int = MAX_SCENE_PIXELS,
                  polygon_options: PolygonOptions | None = None,
                  output: Output = "mask", driver: str | None = None,
                  tags: dict[str, str] | None = None,
                  pixel_size: float | None = None) -> SceneResult:
    """Predict ``input_path`` window by window into a mask GeoTIFF at ``out_path``, at the
    model's resolution and on the scene's grid.

    ``region`` (a rasterio Window) predicts only that part of the scene, georeferenced.
    ``polygons_path`` also writes class polygons (serving/polygons.py, ``polygon_options``).
    ``output="probabilities"`` writes one float32 band per class instead of the mask (NaN
    where the input was invalid); polygons are made from a mask, so not with it.
    ``driver`` opens the scene with that GDAL driver alone (open_scene). ``tags`` are added
    to the output's GeoTIFF tags (what a batch run tells its outputs' scenes by).
    ``pixel_size``: metres per pixel of a scene that carries none (serving.decode's
    PIXEL_SIZE_MEANING), as the server's param.

    ``progress(done_pixels, total_pixels)`` is called after each finished block. Both outputs
    are written to temp files and renamed, so a crash leaves no half-written mask. Anything
    wrong with the scene (unreadable, truncated, too large, wrong bands) is a SceneError
    naming the file."""
    config = predictor.config
    if polygons_path is not None and output != "mask":
        raise ValueError("polygons are made from a mask: predict with output='mask'")
    with plain_images_quiet(), rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb), \
            open_scene(input_path, driver) as src:
        region, grid = _check_scene(input_path, src, config, region, max_pixels, pixel_size)
        blocks = predictor.iter_dataset(src, tta=tta, overlap=overlap,
                                        batch_size=batch_size, factor=grid.factor,
                                        max_panel_width=max_panel_width, region=region)
        try:
            with atomic_path(Path(out_path)) as tmp:
                counts = write_output(predictor, src, region, blocks, tmp, progress, output,
                                      tags)
        except ReadError as exc:
            raise SceneError(f"{input_path}: {exc}: {exc.detail}") from None
        except RasterioError as exc:
            raise SceneError(f"{out_path}: cannot write the {output}: {exc}") from None
        polygon_counts = None
        if polygons_path is not None:
            polygon_counts = write_polygons(Path(out_path), Path(polygons_path),
                                            config.class_names, config.ignore_index,
                                            polygon_options or PolygonOptions())
    class_pixels = {name: int(counts[i]) for i, name in enumerate(config.class_names)}
    class_pixels["ignored"] = int(counts[config.ignore_index])
    return SceneResult(Path(out_path), polygons_path and Path(polygons_path),
                       int(region.width), int(region.height), class_pixels,
                       None if polygon_counts is None else sum(polygon_counts.values()),
                       polygon_counts)


#: Largest block ``check_scene`` decodes to read a scene's last pixel.
_PROBE_BLOCK_BYTES = 16 * 2**20


@dataclass(frozen=True)
class SceneNotes:
    """What to tell the user about a scene before predicting it: how it is resampled (one
    line, or None when it is predicted as it is) and warnings about its resolution, pixel
    type and values, each one line naming the file."""

    resampling: str | None
    warnings: list[str]


def check_scene(input_path: str | os.PathLike, config: ServingConfig, *,
                region: Window | None = None, max_pixels: int = MAX_SCENE_PIXELS,
                driver: str | None = None, pixel_size: float | None = None,
                pixel_size_option: str = "--pixel-size") -> SceneNotes:
    """What ``predict_scene`` checks first, without a model (only its serving config): the
    scene opens, has the model's band count and fits ``max_pixels``; and the last pixel of a
    GeoTIFF in blocks of at most _PROBE_BLOCK_BYTES reads, so a file cut short is found
    before minutes of loading and predicting (a whole-image strip, a PNG or a JPEG would be
    decoded whole for it: those are found when prediction reads them). A SceneError naming
    the file otherwise. Returns the notes about the scene (serving/inputs.py), from a small
    sample of its pixels. ``pixel_size`` as predict_scene's; ``pixel_size_option`` is how
    the warning about a scene without one names the way to give it."""
    with plain_images_quiet(), rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), \
            open_scene(input_path, driver) as src:
        region, grid = _check_scene(input_path, src, config, region, max_pixels, pixel_size,
                                    pixel_size_option)
        _probe_last_pixel(input_path, src)
        what = str(input_path)
        bands = image_bands(src, config.in_channels)
        nodata = band_nodata(src, config.nodata, bands.indexes)
        alpha_note = alpha_tag_warning(src, config.in_channels, what)  # before any pixel read
        sample = sample_dataset(src, bands, region)
        notes = pixel_warnings(config, band_dtype(src), sample, nodata, what)
        if warning := resolution_warning(config, src, pixel_size, what, pixel_size_option):
            notes.insert(0, warning)
        if alpha_note:
            notes.insert(0, alpha_note)
        return SceneNotes(resampling_note(config, grid, src, pixel_size), notes)


def _probe_last_pixel(input_path: str | os.PathLike, src) -> None:
    rows, cols = src.block_shapes[0]
    block_bytes = rows * cols * src.count * band_dtype(src).itemsize
    if src.driver != "GTiff" or block_bytes > _PROBE_BLOCK_BYTES:
        return
    last = Window(src.width - 1, src.height - 1, 1, 1)
    try:
        read_bands(src, window=last)
    except RasterioError as exc:
        raise SceneError(f"{input_path}: cannot read pixels (truncated or corrupt "
                         f"data?): {exc.__cause__ or exc}") from None


def open_scene(input_path: str | os.PathLike, driver: str | None = None):
    """``input_path`` opened with rasterio, by ``driver`` alone when given (a scene checked
    where it came from, such as an S3 object: one replaced since by another format, a VRT
    naming other files, does not open); a SceneError naming the file when it cannot be (not
    a raster, or a header cut short)."""
    try:
        return rasterio.open(input_path, driver=driver)
    except RasterioIOError as exc:
        raise SceneError(f"{input_path}: cannot read the scene: {exc}") from None


def _check_scene(input_path: str | os.PathLike, src, config: ServingConfig, region: Window | None,
                 max_pixels: int, pixel_size: float | None,
                 pixel_size_option: str = "--pixel-size") -> tuple[Window, ModelGrid]:
    """The region to predict and its model grid, after the checks that need no pixels."""
    if problem := band_count_problem(src, config.in_channels):
        raise SceneError(f"{input_path}: wrong band count: {problem}, the model expects "
                         f"{config.in_channels}")
    region = _check_region(input_path, src, region)
    grid = ModelGrid(int(region.height), int(region.width),
                     resample_factor(config, src, pixel_size))
    if problem := shrink_problem(config, grid, src, pixel_size, "the scene", pixel_size_option):
        raise SceneError(f"{input_path}: {problem}")
    if grid.pixels > max_pixels:
        raise SceneError(f"{input_path}: too many pixels: {grid.describe()}, the limit "
                         f"is {max_pixels}")
    return region, grid


def _check_region(input_path: str | os.PathLike, src, region: Window | None) -> Window:
    if region is None:
        return Window(0, 0, src.width, src.height)
    inside = Window(0, 0, src.width, src.height)
    if (region.width < 1 or region.height < 1 or region.col_off < 0 or region.row_off < 0
            or region.col_off + region.width > inside.width
            or region.row_off + region.height > inside.height):
        raise SceneError(f"{input_path}: region {region} is not inside the "
                         f"{src.width}x{src.height} scene")
    return region
