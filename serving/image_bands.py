"""Which bands of an image the model reads, and which pixels the image's own mask marks as no
data: every path that predicts a user's image (the server's uploads, the app's, ``segpipe
predict``) reads its pixels here.

A band GDAL reads as alpha is transparency. A PNG's is always that (a PNG holds grey or RGB
plus an optional alpha, nothing else), so it is a validity mask and never a model band: its
transparent pixels are no data, and a PNG of 3 colours + alpha has 3 bands. A GeoTIFF's alpha
tag is ambiguous: GDAL writes it by default on the 4th band of any 8-bit 4-band GeoTIFF, RGB +
near infrared included, and the training steps read such a band as data; so it is read as
transparency only where the model's band count shows it is one (3 bands + alpha for a 3-band
model), and as a band otherwise, as in training. A mask of GDAL's own (a ``.msk`` file, a
GeoTIFF's or JPEG's internal mask) marks no data too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.enums import ColorInterp, MaskFlags, Resampling

from serving.bands import band_dtype
from serving.pixels import invalid_as_nan
from serving.resampled_read import read_resampled
from serving.wording import counted

#: GDAL's JPEG driver converts a CMYK JPEG to 3 RGB bands, and says so in this tag.
_CMYK = ("IMAGE_STRUCTURE", "SOURCE_COLOR_SPACE", "CMYK")


@dataclass(frozen=True)
class ImageBands:
    """The 1-based bands the model reads, the alpha bands left out, and whether the image's
    mask (that alpha, or a mask band) marks no data."""

    indexes: list[int]
    alpha: list[int]
    masked: bool


def image_bands(dataset, expected: int) -> ImageBands:
    """How ``dataset`` is read for a model of ``expected`` bands (module docstring)."""
    everything = list(range(1, dataset.count + 1))
    alpha = [i for i, interp in enumerate(dataset.colorinterp, 1) if interp == ColorInterp.alpha]
    if alpha and len(alpha) < dataset.count and (
            dataset.driver == "PNG" or dataset.count - len(alpha) == expected):
        return ImageBands([i for i in everything if i not in alpha], alpha, True)
    # A mask band of GDAL's own; not the alpha flag, which a kept alpha band sets.
    mask_band = any(MaskFlags.per_dataset in flags and MaskFlags.alpha not in flags
                    for flags in dataset.mask_flag_enums)
    return ImageBands(everything, [], mask_band)


def alpha_tag_warning(dataset, expected: int, what: str) -> str | None:
    """How a GeoTIFF's ambiguous alpha tag was read (module docstring), and what to do if
    that is wrong; None for an image without one, or a PNG's, which is transparency."""
    tagged = [i for i, interp in enumerate(dataset.colorinterp, 1) if interp == ColorInterp.alpha]
    if dataset.driver == "PNG" or not tagged or len(tagged) == dataset.count:
        return None
    band = tagged[0]
    if image_bands(dataset, expected).alpha:
        return (f"{what}: band {band} is tagged alpha: read as transparency, its 0 pixels no "
                f"data (the model has {counted(expected, 'band')}); if it is a data band "
                f"(near infrared), remove the tag (gdal_edit.py -colorinterp_{band} "
                f"undefined) and use a model of {counted(dataset.count, 'band')}")
    return (f"{what}: band {band} is tagged alpha: read as a band, as in training (the model "
            f"has {counted(expected, 'band')}); if it is transparency (an RGBA orthomosaic), "
            f"predict with a model of {counted(dataset.count - len(tagged), 'band')}")


def band_count_problem(dataset, expected: int) -> str | None:
    """Why the bands ``dataset`` gives the model are not ``expected``, naming what the file
    holds (``3 bands and an alpha channel (band 4: ...)``); None when they are."""
    bands = image_bands(dataset, expected)
    count = len(bands.indexes)
    if count == expected:
        return None
    text = counted(count, "band")
    if bands.alpha:
        text += (f" and an alpha channel (band {bands.alpha[0]}: transparency, whose "
                 f"transparent pixels are no data, not a band the model reads)")
        if dataset.driver == "PNG" and expected > count:
            text += "; a PNG holds at most 3 colour bands besides alpha: send a GeoTIFF"
    namespace, key, value = _CMYK
    if dataset.tags(ns=namespace).get(key) == value:
        text += " (a CMYK JPEG: GDAL reads its 4 channels as 3 RGB bands)"
    return text


def read_pixels(dataset, window, bands: ImageBands, shape: tuple[int, int] | None = None,
                resampling: Resampling = Resampling.nearest) -> np.ndarray:
    """(rows, cols, bands) of ``window``, resampled to ``shape`` if given. An image whose
    mask marks no data (``bands.masked``) is read as floats with those pixels NaN, invalid
    to every reader; GDAL leaves them out of the resampling kernels, as it does nodata.
    RasterioError when GDAL cannot read the pixels.

    GDAL writes the pixels interleaved straight into the result (several times faster than
    reading bands and interleaving them afterwards, and everything downstream then works on
    contiguous pixels)."""
    if shape is None:
        shape = (int(round(window.height)), int(round(window.width)))
    out = np.empty((*shape, len(bands.indexes)), band_dtype(dataset))
    read_resampled(dataset, bands.indexes, window, shape, resampling,
                   out=np.moveaxis(out, -1, 0))
    if not bands.masked:
        return out
    # On the model grid, a pixel is masked where the input pixel at its centre is.
    valid = dataset.read_masks(bands.indexes[0], window=window, out_shape=shape,
                               resampling=Resampling.nearest)
    return invalid_as_nan(out, valid == 0)
