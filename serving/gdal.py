"""The GDAL environment every raster read runs under, in serving and in the data plane."""

from __future__ import annotations

import rasterio
from rasterio.session import DummySession

from serving.pixels import GDAL_CACHE_MB


def local_gdal_env(cache_mb: int = GDAL_CACHE_MB) -> rasterio.Env:
    """GDAL with its block cache capped at ``cache_mb``, reading local files only: scenes and
    data-plane inputs are local (an S3 source is downloaded by boto3 first, which names the
    source when its credentials are wrong), so no AWS session. rasterio would otherwise
    build one from the environment and fail on half-set credentials (an empty
    $AWS_SECRET_ACCESS_KEY, as shells and CI "clear" a secret) with a traceback."""
    return rasterio.Env(session=DummySession(), GDAL_CACHEMAX=cache_mb)
