"""Answers of the scoring server and the --endpoint client: masks and probabilities as base64
PNG, GeoTIFF (with the input's CRS and transform when it had them) or .npy."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np
from rasterio.io import MemoryFile

from serving.config import ServingConfig
from serving.quiet import plain_images_quiet


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
    with MemoryFile() as memfile, plain_images_quiet():
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
    with MemoryFile() as memfile, plain_images_quiet():
        with memfile.open(**profile) as dst:
            dst.write(np.moveaxis(image, -1, 0))
        return base64.b64encode(memfile.read()).decode("ascii")


#: Bytes base64-encoded at a time (a multiple of 3, so the pieces join into one encoding).
_BASE64_CHUNK = 3 * 2**20


def encode_npy(array: np.ndarray) -> str:
    """Any array -> base64 .npy (what the npy request column answers), encoded piece by piece
    from the array's own memory: no whole .npy copy of it first."""
    array = np.ascontiguousarray(array)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(array))
    head = header.getvalue()
    data = memoryview(array.reshape(-1).view(np.uint8))
    lead = min(len(data), -len(head) % 3)  # data bytes that complete the header's last triple
    out = bytearray(4 * -(-(len(head) + len(data)) // 3))
    written = _put_base64(out, 0, head + bytes(data[:lead]))
    for start in range(lead, len(data), _BASE64_CHUNK):
        written = _put_base64(out, written, data[start:start + _BASE64_CHUNK])
    return out.decode("ascii")


def _put_base64(out: bytearray, at: int, piece) -> int:
    encoded = binascii.b2a_base64(piece, newline=False)
    out[at:at + len(encoded)] = encoded
    return at + len(encoded)


def decode_npy_answer(value: str) -> np.ndarray:
    """A base64 .npy answer of the server (the --endpoint client's side) -> array."""
    return np.load(io.BytesIO(base64.b64decode(value)), allow_pickle=False)
