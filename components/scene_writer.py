"""Ingest's second pass: one scene pair written as ``<scene>_image.tif`` (the source's
pixels in its bands' common dtype, nodata, CRS and transform; a PNG's alpha channel is no
band, its transparent pixels no data, as are the pixels a GeoTIFF's own mask marks:
components.image_nodata.source_bands) and
``<scene>_mask.tif`` (uint8 class ids), strip by strip so memory does not grow with the
scene; labels were surveyed and the ``LabelSpec`` fixed before (``components.ingest``)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import numpy as np
import rasterio
from rasterio.features import rasterize
from rasterio.transform import Affine
from rasterio.windows import Window

from components.atomic import atomic_path
from components.discover import ScenePair
from components.image_nodata import source_bands
from components.label_place import image_window, place_label
from components.labelme import labelme_shapes
from components.labels import LabelSpec, map_colors, map_values
from components.masks import mask_format
from components.raster import (
    geotiff_profile,
    invalid_pixels,
    read_mask_window,
    read_window,
    strip_windows,
)
from components.vectors import VectorLayer
from serving.bands import band_dtype
from serving.image_bands import ImageBands
from serving.pixels import Nodata, float_dtype
from serving.quiet import plain_images_quiet


class WrittenScene(NamedTuple):
    valid: bool  # its image has a valid pixel (one not nodata or NaN)
    source_dtype: str  # the image's own pixel type, before floats carry its NaN


def write_scene(pair: ScenePair, spec: LabelSpec, scenes_dir: Path, lossy: bool,
                color_table: str, nodata: Nodata, layer: VectorLayer | None) -> WrittenScene:
    """Write one scene pair (vector labels: the polygons ``layer.place`` found over it),
    the image tagged with ``nodata`` (components.image_nodata: its own, or the option's).

    Per-band nodata (a VRT's bands tagged apart) has no GeoTIFF tag: the image is written as
    floats (serving.pixels.float_dtype) with every band of its invalid pixels NaN, tagged
    NaN, so every later reader sees those pixels invalid with one value. So is an image
    whose own mask (a PNG's alpha, a GeoTIFF's mask band) marks a pixel (no value of its
    own type is free to mark them), tagged with its nodata; one whose mask marks none keeps
    its type."""
    per_band = isinstance(nodata, tuple)
    shapes, shape_transform = None, Affine.identity()
    # Uncovered ground: background, or for numeric polygon classes what value 0 maps to.
    fill = spec.value_ids.get(0, spec.ignore) if layer is not None and layer.numeric \
        else spec.label_ids.get("background", 0)
    if pair.kind == "labelme":
        shapes = labelme_shapes(pair.label, spec)
    with pair.open_image() as img:
        window = image_window(pair, img)
        width, height = int(window.width), int(window.height)
        bands = source_bands(img)
        masked = bands.masked and any(_masked(img, pair.image, bands, strip).any()
                                      for strip in strip_windows(width, height))
        # The alpha is read with the colours: a PNG read again for its mask is decoded again
        # from its first row, strip after strip. A GeoTIFF's mask band is a file or IFD of
        # its own, read apart without decoding the pixels again.
        read = bands.indexes + (bands.alpha if masked else [])
        as_floats = per_band or masked
        georeferenced = img.crs is not None
        crs = img.crs if georeferenced else None
        transform = img.transform if georeferenced else Affine.identity()
        if layer is not None:
            shapes = layer.shapes_for(pair.image, spec.value_ids if layer.numeric
                                      else spec.label_ids, spec.ignore)
            shape_transform = transform
        source_dtype = band_dtype(img)
        dtype = float_dtype(source_dtype) if as_floats else source_dtype
        image_profile = geotiff_profile(width, height, len(bands.indexes), dtype.name, crs,
                                        transform, float("nan") if per_band else nodata)
        mask_profile = geotiff_profile(width, height, 1, "uint8", crs, transform, spec.ignore)
        image_path = scenes_dir / f"{pair.name}_image.tif"
        mask_path = scenes_dir / f"{pair.name}_mask.tif"
        with ExitStack() as stack:
            label_src = (None if shapes is not None
                         else stack.enter_context(pair.open_label()))
            fmt = mask_format(label_src, pair.label, color_table) if label_src else None
            place = place_label(pair, img, label_src) if label_src else None
            # Plain JPEG/PNG scenes are written with the identity transform on purpose.
            stack.enter_context(plain_images_quiet())
            with atomic_path(image_path) as tmp_image, atomic_path(mask_path) as tmp_mask, \
                    rasterio.open(tmp_image, "w", **image_profile) as dst_image, \
                    rasterio.open(tmp_mask, "w", **mask_profile) as dst_mask:
                valid = False
                for strip in strip_windows(width, height):
                    block = read_window(img, pair.image, window=strip, indexes=read)
                    alpha, block = block[len(bands.indexes):], block[:len(bands.indexes)]
                    invalid = invalid_pixels(block, nodata)
                    if masked:
                        invalid |= _masked(img, pair.image, bands, strip, alpha)
                    if as_floats:
                        block = block.astype(dtype)
                        block[:, invalid] = np.nan
                    dst_image.write(block, window=strip)
                    if shapes is not None:
                        mask = rasterize(
                            shapes, out_shape=(int(strip.height), width), fill=fill,
                            transform=shape_transform @ Affine.translation(0, strip.row_off),
                            dtype="uint8") if shapes else \
                            np.full((int(strip.height), width), fill, np.uint8)
                    else:
                        raw = place.read(label_src, pair.label, fmt, strip)
                        mask = (map_values(raw, spec, pair.label) if fmt.kind == "ids"
                                else map_colors(raw, spec, pair.label, lossy))
                    valid = valid or not invalid.all()
                    mask[invalid] = spec.ignore
                    dst_mask.write(mask[None], window=strip)
    return WrittenScene(valid, source_dtype.name)


def _masked(img, path: Path, bands: ImageBands, strip: Window,
            alpha: np.ndarray | None = None) -> np.ndarray:
    """(rows, cols) bool: the pixels of ``strip`` the image's own mask marks as no data, as
    serving.image_bands.read_pixels reads them: alpha 0 in an alpha band (GDAL's mask of one
    is 0 there alone; ``alpha``: those bands, if read already), else GDAL's mask band 0."""
    if not bands.alpha:
        return read_mask_window(img, path, bands.indexes[0], strip) == 0
    if alpha is None:
        alpha = read_window(img, path, window=strip, indexes=bands.alpha)
    return (alpha == 0).any(axis=0)
