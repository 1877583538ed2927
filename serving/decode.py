"""Request decoding and validation for the scoring server: tensors and base64 images in,
clear ``RequestError`` messages out (the pyfunc turns them into HTTP 400)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.io import MemoryFile

from serving.config import MAX_OVERLAP, ServingConfig

OUTPUTS = ("mask", "probabilities")


class RequestError(ValueError):
    """A request the model cannot answer; the message says what is wrong with it."""


def check_params(params: dict[str, Any] | None, config: ServingConfig) -> tuple[bool, float, str]:
    """(tta, overlap, output) from request params, defaults from the config."""
    params = params or {}
    tta = bool(params.get("tta", False))
    overlap = params.get("overlap")
    overlap = config.overlap if overlap is None else float(overlap)
    if not 0.0 <= overlap <= MAX_OVERLAP:
        raise RequestError(f"param overlap must be between 0 and {MAX_OVERLAP}, got {overlap}")
    output = str(params.get("output") or "mask")
    if output not in OUTPUTS:
        raise RequestError(f"param output must be one of {list(OUTPUTS)}, got {output!r}")
    return tta, overlap, output


def _check_size(pixels: int, config: ServingConfig, what: str) -> None:
    if pixels > config.max_pixels:
        raise RequestError(f"too many pixels: {what} has {pixels}, the limit per request is "
                           f"{config.max_pixels}")


def _check_bands(bands: int, config: ServingConfig, what: str) -> None:
    if bands != config.in_channels:
        raise RequestError(f"wrong band count: {what} has {bands} bands, the model expects "
                           f"{config.in_channels}")


def check_tensor(data: Any, config: ServingConfig) -> np.ndarray:
    """Tensor input -> (N, H, W, C) numeric array, or RequestError naming the problem."""
    if isinstance(data, dict):
        if len(data) != 1:
            raise RequestError(f"tensor input must hold one array, got keys {sorted(data)}")
        data = next(iter(data.values()))
    try:
        array = np.asarray(data)
    except ValueError as exc:  # ragged nested lists
        raise RequestError(f"tensor input is not a rectangular array: {exc}") from None
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise RequestError(f"tensor input must have shape (N, H, W, C) or (H, W, C), "
                           f"got {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise RequestError(f"tensor input must be numeric, got dtype {array.dtype}")
    n, h, w, c = array.shape
    if min(n, h, w) == 0:
        raise RequestError(f"tensor input is empty: shape {array.shape}")
    _check_bands(c, config, f"tensor of shape {array.shape}")
    _check_size(n * h * w, config, f"tensor of shape {array.shape}")
    return array


def decode_base64(value: Any, index: int) -> bytes:
    if isinstance(value, bytes | bytearray):
        text = bytes(value)
    elif isinstance(value, str):
        text = value.encode("ascii", errors="replace")
    else:
        raise RequestError(f"image {index}: expected a base64 string, got {type(value).__name__}")
    if text.startswith(b"data:") and b"," in text:  # data URL
        text = text.split(b",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(f"image {index}: undecodable image, not valid base64") from None


@contextlib.contextmanager
def open_image(raw: bytes, index: int, config: ServingConfig) -> Iterator[Any]:
    """Open encoded GeoTIFF/PNG/JPEG bytes lazily and check bands and size before reading."""
    with MemoryFile(raw) as memfile:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                dataset = memfile.open()
        except RasterioIOError:
            raise RequestError(f"image {index}: undecodable image, not a GeoTIFF, PNG or JPEG "
                               f"({len(raw)} bytes)") from None
        with dataset:
            what = f"image {index} ({dataset.width}x{dataset.height})"
            _check_bands(dataset.count, config, what)
            _check_size(dataset.width * dataset.height, config, what)
            yield dataset


def is_georeferenced(dataset) -> bool:
    return dataset.crs is not None or not dataset.transform.is_identity


def encode_mask(mask: np.ndarray, config: ServingConfig, georef=None) -> str:
    """uint8 mask -> base64 PNG, or GeoTIFF with the source's CRS/transform if it had one."""
    height, width = mask.shape
    profile: dict[str, Any] = {"count": 1, "dtype": "uint8", "width": width, "height": height,
                               "nodata": config.ignore_index}
    if georef is not None and is_georeferenced(georef):
        profile.update(driver="GTiff", crs=georef.crs, transform=georef.transform,
                       compress="deflate")
    else:
        profile.update(driver="PNG")
    with MemoryFile() as memfile, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with memfile.open(**profile) as dst:
            dst.write(mask, 1)
            dst.write_colormap(1, config.color_table())
        return base64.b64encode(memfile.read()).decode("ascii")


def encode_probabilities(probs: np.ndarray, georef=None) -> str:
    """(H, W, K) float32 -> base64 float32 GeoTIFF, one band per class."""
    return encode_geotiff(probs.astype(np.float32, copy=False), georef, compress="deflate")


def encode_geotiff(image: np.ndarray, georef=None, compress: str | None = None) -> str:
    """(H, W, C) array of any raster dtype -> base64 GeoTIFF with one band per channel, with
    ``georef``'s CRS and transform when it has them."""
    height, width, bands = image.shape
    profile: dict[str, Any] = {"driver": "GTiff", "count": bands, "dtype": image.dtype.name,
                               "width": width, "height": height}
    if compress:
        profile["compress"] = compress
    if georef is not None and is_georeferenced(georef):
        profile.update(crs=georef.crs, transform=georef.transform)
    with MemoryFile() as memfile, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with memfile.open(**profile) as dst:
            dst.write(np.moveaxis(image, -1, 0))
        return base64.b64encode(memfile.read()).decode("ascii")


def decode_geotiff(value: str) -> np.ndarray:
    """base64 GeoTIFF (as encode_geotiff writes it) -> (H, W, C) array."""
    with MemoryFile(base64.b64decode(value)) as memfile, warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with memfile.open() as src:
            return np.moveaxis(src.read(), 0, -1)


__all__ = ["RequestError", "check_params", "check_tensor", "decode_base64", "decode_geotiff",
           "encode_geotiff", "encode_mask", "encode_probabilities", "is_georeferenced",
           "open_image"]
