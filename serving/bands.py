"""Reading a raster's bands in one type. A GDAL VRT's bands may differ in type (RGB bytes
stacked with a float32 DSM, as ``gdalbuildvrt -separate`` writes them; Sentinel-2 bands of
different products); rasterio reads several bands at once only when they share one. Every
step that reads image pixels (ingest, prediction, the pixel checks, the app's previews) reads
them here, in ``numpy.result_type`` of the band types, which holds every band's values:
uint8 + float32 -> float32, uint16 + int16 -> int32. Training records this type of its
source images (also where a scene was written as floats to carry NaN), so a scene predicted
later is checked against the same type."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rasterio.enums import MaskFlags

from serving.pixels import Nodata


def band_dtype(dataset) -> np.dtype:
    """The type ``dataset``'s bands are read in: their common type."""
    return np.result_type(*dataset.dtypes)


def same_nodata(a: float | None, b: float | None) -> bool:
    """Whether two nodata values mark the same pixels: equal, or both NaN (NaN != NaN)."""
    return a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b))


def is_colour_key(dataset) -> bool:
    """Whether ``dataset``'s per-band nodata tags are one colour key (GDAL's multi-band
    NODATA_VALUES, as it reads a PNG's tRNS transparent colour): a pixel is no data where
    every band equals its own value together, which GDAL's mask of the dataset marks
    (serving.image_bands reads it); the values as separate per-band tags would mark a pixel
    where any one band matched."""
    return dataset.count > 1 and all(MaskFlags.per_dataset in flags and MaskFlags.nodata in flags
                                     for flags in dataset.mask_flag_enums)


def band_nodata(dataset, fallback: Nodata = None,
                indexes: Sequence[int] | None = None) -> Nodata:
    """The nodata ``dataset``'s pixels are read with: its bands' own tags (one value when
    every band has the same; per band when they differ, as in a VRT stacking an untagged RGB
    file and a DSM tagged -9999: serving.pixels.invalid_pixels groups them), else
    ``fallback`` (a nodata option, the model's) for every band, as for a colour key, which is
    no per-band tags but a mask (``is_colour_key``). ``indexes``: of those bands (1-based)
    alone, when not all are read."""
    if is_colour_key(dataset):
        return fallback
    tags = tuple(dataset.nodatavals)
    if indexes is not None:
        tags = tuple(tags[index - 1] for index in indexes)
    if all(tag is None for tag in tags):
        return fallback
    first = tags[0]
    if first is not None and all(tag is not None and same_nodata(tag, first) for tag in tags):
        return first
    return tags


def nodata_text(nodata: Nodata) -> str:
    """``nodata`` as messages name it: -9999, or per band: (none, none, none, -9999)."""
    if isinstance(nodata, tuple | list):
        return "(" + ", ".join("none" if v is None else f"{v:g}" for v in nodata) + ")"
    return "none" if nodata is None else f"{nodata:g}"


def read_bands(dataset, indexes: int | Sequence[int] | None = None,
               out: np.ndarray | None = None, **kwargs) -> np.ndarray:
    """``dataset.read(indexes, out=out, **kwargs)`` in ``band_dtype``: bands of several types
    are read one by one (into ``out``'s planes when given, which may be a strided view)."""
    if len(set(dataset.dtypes)) == 1:
        return dataset.read(indexes, out=out, **kwargs)
    dtype = band_dtype(dataset)
    shape = kwargs.pop("out_shape", None)
    if out is None and shape is not None:
        kwargs["out_shape"] = tuple(shape[-2:])  # a plane's: (bands, h, w) -> (h, w)
    if isinstance(indexes, int):
        return dataset.read(indexes, out=out, out_dtype=None if out is not None else dtype,
                            **kwargs)
    indexes = list(range(1, dataset.count + 1) if indexes is None else indexes)
    start = 0
    if out is None:
        first = dataset.read(indexes[0], out_dtype=dtype, **kwargs)
        kwargs.pop("out_shape", None)
        out = np.empty((len(indexes), *first.shape), dtype)
        out[0], start = first, 1
    for plane, index in enumerate(indexes[start:], start):
        dataset.read(index, out=out[plane], **kwargs)
    return out
