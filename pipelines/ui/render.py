"""Pictures for the page: an RGB rendering of any raster, the mask in class colours over
it, and the legend. Everything is read decimated to at most ``max_side`` pixels a side, so a
large scene costs a small read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling

from serving.bands import band_dtype, band_nodata, read_bands
from serving.pixels import invalid_pixels
from serving.quiet import plain_images_quiet

PREVIEW_SIDE = 1024
STRETCH_PERCENTILES = (2.0, 98.0)


@dataclass(frozen=True)
class Preview:
    rgb: np.ndarray  # (h, w, 3) uint8
    valid: np.ndarray  # (h, w) bool


def preview_shape(height: int, width: int, max_side: int = PREVIEW_SIDE) -> tuple[int, int]:
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def stretch(bands: np.ndarray, valid: np.ndarray,
            percentiles: tuple[float, float] = STRETCH_PERCENTILES) -> np.ndarray:
    """(h, w, C) raw values -> uint8, each band stretched between its own low and high
    percentile over the valid pixels (a flat band maps to mid grey, invalid pixels to 0)."""
    out = np.zeros(bands.shape, np.uint8)
    if not valid.any():
        return out
    for c in range(bands.shape[-1]):
        band = bands[..., c].astype(np.float64)
        low, high = np.percentile(band[valid], percentiles)
        if high > low:
            scaled = np.clip((band - low) / (high - low), 0.0, 1.0) * 255.0
        else:
            scaled = np.full(band.shape, 128.0)
        out[..., c] = np.where(valid, np.round(scaled), 0).astype(np.uint8)
    return out


def read_preview(path: Path, max_side: int = PREVIEW_SIDE) -> Preview:
    """RGB rendering of a raster: the first three bands (one or two bands: the first, as
    grey) with a percentile stretch; 8-bit RGB(A) images are shown as they are."""
    with plain_images_quiet(), rasterio.open(path) as src:
        shape = preview_shape(src.height, src.width, max_side)
        data = read_bands(src, out_shape=(src.count, *shape), resampling=Resampling.nearest)
        nodata = band_nodata(src)
        dtype = band_dtype(src)
    image = np.moveaxis(data, 0, -1)
    valid = ~invalid_pixels(image, nodata)
    shown = image[..., :3] if image.shape[-1] >= 3 else image[..., :1]
    if dtype == "uint8" and shown.shape[-1] == 3 and nodata is None:
        rgb = shown.copy()  # a photo: its own colours are right
    else:
        rgb = stretch(shown, valid)
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    return Preview(rgb=rgb, valid=valid)


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The mask's class ids at the preview's (h, w), nearest neighbour."""
    with plain_images_quiet(), rasterio.open(path) as src:
        return src.read(1, out_shape=shape, resampling=Resampling.nearest)


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def overlay(rgb: np.ndarray, mask: np.ndarray, colors: list[str], opacity: float) -> np.ndarray:
    """``rgb`` with each pixel of class k blended towards ``colors[k]`` by ``opacity``;
    pixels whose value is not a class (ignored, nodata) stay as they are."""
    if rgb.shape[:2] != mask.shape:
        raise ValueError(f"mask {mask.shape} and image {rgb.shape[:2]} differ in size")
    opacity = float(np.clip(opacity, 0.0, 1.0))
    palette = np.zeros((256, 3), np.float32)
    palette[:len(colors)] = [hex_to_rgb(c) for c in colors]
    is_class = mask < len(colors)
    blended = rgb.astype(np.float32)
    blended[is_class] = (1 - opacity) * blended[is_class] + opacity * palette[mask[is_class]]
    return np.round(blended).astype(np.uint8)
