"""Tiles copied from a per-scene template are the files GDAL itself would write."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin

from components.tile_writer import TileTemplate, gdal_tile


@pytest.mark.parametrize(("shape", "dtype", "crs", "transform", "nodata"), [
    ((4, 256, 256), "uint16", "EPSG:32650", from_origin(600000.0, 3000000.0, 2.0, 2.0), 0),
    ((1, 256, 256), "uint8", "EPSG:32650", from_origin(600000.0, 3000000.0, 2.0, 2.0), 255),
    ((3, 100, 100), "float32", "EPSG:4326", from_origin(100.0, 30.0, 1e-4, 1e-4), np.nan),
    ((2, 48, 48), "int16", "EPSG:3857", Affine(0.5, 0.1, 1000.0, 0.1, -0.5, 2000.0), None),
    ((3, 64, 64), "uint8", None, Affine.identity(), None),
])
def test_template_tiles_are_byte_equal_to_gdal_files(shape, dtype, crs, transform, nodata):
    crs = CRS.from_user_input(crs) if crs else None
    template = TileTemplate(shape, np.dtype(dtype), crs, transform, nodata)
    rng = np.random.default_rng(0)
    for col, row in ((32, 0), (64, 96), (7, 3)):
        array = (rng.random(shape) * 200).astype(dtype)
        tile_transform = transform @ Affine.translation(col, row)
        assert bytes(template.tile_bytes(array, tile_transform)) == \
            gdal_tile(array, crs, tile_transform, nodata)
    if crs is not None:
        assert template.data is not None  # the fast path, not the fallback
