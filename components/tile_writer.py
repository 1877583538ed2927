"""Write tile GeoTIFFs fast: GDAL makes one file per scene and tile kind, and each tile is a
copy of it with its own origin and pixels.

Tiles of one scene share size, bands, dtype, CRS, pixel size and nodata: uncompressed, in
one block, their files differ only in the 8-byte origin coordinates and the pixel block,
both at fixed offsets. GDAL building a GeoTIFF costs about 0.5 ms of CPU (most of it turning
the CRS into GeoTIFF keys), a patched copy a fraction of that. The template is checked when
it is made (a classic little-endian TIFF, one block where the pixels were written, the
origin where it was set); anything else falls back to GDAL for every tile, so the files
are what GDAL would write either way (a test holds them byte-equal)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from rasterio.io import MemoryFile
from rasterio.transform import Affine

_TIEPOINT, _TRANSFORMATION = 33922, 34264
_TILE_OFFSETS, _STRIP_OFFSETS = 324, 273
_TILE_BYTES, _STRIP_BYTES = 325, 279
# Sentinel origin of the template: a value no real transform is likely to carry, so its
# doubles can be found (and checked) in the file.
_SENTINEL = (123456.25, 654321.75)


def gdal_tile(array: np.ndarray, crs, transform: Affine, nodata) -> bytes:
    """One (C, H, W) tile as GDAL writes it: uncompressed, one block."""
    size = array.shape[1]
    block = ({"tiled": True, "blockxsize": array.shape[2], "blockysize": size}
             if size % 16 == 0 and array.shape[2] % 16 == 0 else {"blockysize": size})
    with MemoryFile() as memory:
        with memory.open(driver="GTiff", width=array.shape[2], height=size,
                         count=array.shape[0], dtype=array.dtype, crs=crs, transform=transform,
                         nodata=nodata, **block) as dst:
            dst.write(array)
        return memory.read()


def _tags(data: bytes) -> dict[int, tuple[int, int, int]] | None:
    """Classic little-endian TIFF: tag -> (type, count, value or offset) of the first IFD."""
    if data[:4] != b"II*\x00":
        return None
    ifd = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, ifd)[0]
    return {tag: (kind, n, value) for tag, kind, n, value in
            (struct.unpack_from("<HHII", data, ifd + 2 + 12 * k) for k in range(count))}


class TileTemplate:
    """Tiles of one shape, dtype, CRS, pixel size and nodata (one scene's images or masks)."""

    def __init__(self, shape: tuple[int, ...], dtype, crs, transform: Affine, nodata) -> None:
        self.crs, self.nodata = crs, nodata
        self.linear = transform
        probe = (np.arange(int(np.prod(shape))) % 251).astype(dtype).reshape(shape)
        self.data = self._origin = self._pixels = None
        try:
            self._build(probe, transform)
        except (struct.error, KeyError, ValueError):
            self.data = None

    def _build(self, probe: np.ndarray, transform: Affine) -> None:
        origin = Affine(transform.a, transform.b, _SENTINEL[0],
                        transform.d, transform.e, _SENTINEL[1])
        data = gdal_tile(probe, self.crs, origin, self.nodata)
        tags = _tags(data)
        if tags is None:
            return
        if _TIEPOINT in tags and tags[_TIEPOINT][1] == 6:
            at = tags[_TIEPOINT][2] + 3 * 8
            step = 8
        elif _TRANSFORMATION in tags and tags[_TRANSFORMATION][1] == 16:
            at = tags[_TRANSFORMATION][2] + 3 * 8
            step = 4 * 8
        else:
            return
        if struct.unpack_from("<d", data, at)[0] != _SENTINEL[0] or \
                struct.unpack_from("<d", data, at + step)[0] != _SENTINEL[1]:
            return
        offsets = tags.get(_TILE_OFFSETS) or tags.get(_STRIP_OFFSETS)
        counts = tags.get(_TILE_BYTES) or tags.get(_STRIP_BYTES)
        pixels = np.moveaxis(probe, 0, -1).tobytes()
        if offsets is None or counts is None or offsets[1] != 1 or counts[2] != len(pixels):
            return
        if data[offsets[2]:offsets[2] + len(pixels)] != pixels:
            return  # not pixel-interleaved as expected
        self.data, self._origin, self._step, self._pixels = bytearray(data), at, step, \
            offsets[2]

    def tile_bytes(self, array: np.ndarray, transform: Affine) -> bytes | bytearray:
        """The GeoTIFF of one (C, H, W) tile whose transform is ``transform``."""
        if self.data is None or (transform.a, transform.b, transform.d, transform.e) != (
                self.linear.a, self.linear.b, self.linear.d, self.linear.e):
            return gdal_tile(array, self.crs, transform, self.nodata)
        out = bytearray(self.data)
        struct.pack_into("<d", out, self._origin, transform.c)
        struct.pack_into("<d", out, self._origin + self._step, transform.f)
        pixels = np.moveaxis(array, 0, -1).tobytes() if array.shape[0] > 1 else array.tobytes()
        out[self._pixels:self._pixels + len(pixels)] = pixels
        return out

    def write(self, path: Path, array: np.ndarray, transform: Affine) -> None:
        data = self.tile_bytes(array[None] if array.ndim == 2 else array, transform)
        with open(path, "wb") as f:
            f.write(data)
