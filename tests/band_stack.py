"""Tiny rasters of bands of several types: GeoTIFFs stacked by a VRT written by hand, as
``gdalbuildvrt -separate`` writes it (each band keeps its file's type)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "int32": "Int32",
              "float32": "Float32", "float64": "Float64"}


def write_tif(path: Path, bands: np.ndarray, crs: str = "EPSG:32650",
              origin: tuple[float, float] = (600000.0, 3000000.0), pixel: float = 1.0,
              nodata: float | None = None) -> Path:
    """(C, H, W) ``bands`` as a GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                       count=bands.shape[0], dtype=bands.dtype.name, crs=crs, nodata=nodata,
                       transform=from_origin(*origin, pixel, pixel)) as dst:
        dst.write(bands)
    return path


def write_stack_vrt(path: Path, files: list[Path],
                    nodata: float | None | Sequence[float | None] = None) -> Path:
    """A VRT at ``path`` of every band of ``files`` in order, each in its file's type, on
    the first file's grid (the files share it), sources named relative to the VRT; each band
    tagged ``nodata``, or with a sequence, the tag of its file's entry (as the docs' stacking
    script copies each file's tag)."""
    tags = list(nodata) if isinstance(nodata, Sequence) else [nodata] * len(files)
    with rasterio.open(files[0]) as first:
        width, height, crs, transform = first.width, first.height, first.crs, first.transform
    bands = []
    for file, file_tag in zip(files, tags, strict=True):
        with rasterio.open(file) as src:
            types = src.dtypes
        name = os.path.relpath(file, path.parent)
        for index, dtype in enumerate(types, 1):
            tag = "" if file_tag is None else f"<NoDataValue>{file_tag:g}</NoDataValue>"
            bands.append(
                f'<VRTRasterBand dataType="{GDAL_TYPES[dtype]}" band="{len(bands) + 1}">{tag}'
                f'<SimpleSource><SourceFilename relativeToVRT="1">{name}</SourceFilename>'
                f'<SourceBand>{index}</SourceBand></SimpleSource></VRTRasterBand>')
    geo = ", ".join(repr(v) for v in transform.to_gdal())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
                    f'<SRS>{crs.to_wkt()}</SRS><GeoTransform>{geo}</GeoTransform>'
                    + "".join(bands) + "</VRTDataset>")
    return path


def rgb_dsm(vrt: Path, parts: Path, size: int = 32, seed: int = 0,
            **grid) -> tuple[Path, np.ndarray]:
    """``vrt``: 3 uint8 bands (``parts/rgb.tif``) and one float32 DSM band (``parts/dsm.tif``,
    metres with decimals); returns it and its bands as float32 (C, H, W)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(1, 256, (3, size, size)).astype(np.uint8)
    dsm = (250.0 + rng.normal(0, 0.6, (1, size, size))).astype(np.float32)
    files = [write_tif(parts / "rgb.tif", rgb, **grid), write_tif(parts / "dsm.tif", dsm, **grid)]
    return write_stack_vrt(vrt, files), np.concatenate([rgb.astype(np.float32), dsm])
