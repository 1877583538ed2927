"""The GDAL environment every raster read runs under, in serving and in the data plane."""

from __future__ import annotations

import rasterio

from serving.pixels import GDAL_CACHE_MB


def local_gdal_env(cache_mb: int = GDAL_CACHE_MB) -> rasterio.Env:
    """GDAL with its block cache capped at ``cache_mb``. The AWS session is rasterio's own,
    from the environment, so a VRT of private /vsis3/ files is read signed; the segpipe
    command drops the half-set credentials it would fail on (pipelines/cli/__init__.py)."""
    return rasterio.Env(GDAL_CACHEMAX=cache_mb)
