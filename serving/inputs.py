"""Does an input look like what the model learnt from? Two cheap checks before predicting,
each a one-line warning (never a refusal: the pixels may be right after all):

- its pixel type against the training scenes' (``input_dtype``): an 8-bit copy of 16-bit
  imagery (or the reverse) has values of another range, and the model, normalizing with the
  training statistics, sees nothing it knows. Types of the same range (int16 and int32,
  uint16 and int16, any of them and floats) stay silent: their values are the same numbers;
- its values, sampled, against the training statistics: most valid pixels beyond the
  training mean +- FAR_STD std in some band (a 16-bit copy stretched to the full range), or
  a spread NARROW times below training's in every band (reflectance 0-1 for a model trained
  on digital numbers), mean another radiometry than training's.

The sample is a few small windows spread over the input (SAMPLE_WINDOWS of SAMPLE_SIDE px),
read before prediction reads the whole: a few blocks of a tiled GeoTIFF, whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rasterio.errors import RasterioError
from rasterio.windows import Window

from serving.bands import band_dtype
from serving.config import ServingConfig
from serving.image_bands import ImageBands, read_pixels
from serving.pixels import Nodata, invalid_pixels

#: A pixel is far from training when some band is beyond mean +- FAR_STD std.
FAR_STD = 10.0
#: Share of far pixels of the sample above which the values are reported.
FAR_SHARE = 0.5
#: The values are reported too when their spread is NARROW times below training's in every
#: band: data divided by a large factor (reflectance for a model trained on digital
#: numbers), which stays within a few std of the mean when the training mean is a few std
#: above zero.
NARROW = 100.0
#: Fewest valid sampled pixels the value check judges from.
MIN_SAMPLE = 16
SAMPLE_SIDE, SAMPLE_WINDOWS = 64, 3  # 3 x 3 windows of 64 x 64 px


def _eight_bit(dtype: np.dtype | str) -> bool:
    dtype = np.dtype(dtype)
    return dtype.kind in "biu" and dtype.itemsize == 1


def _means(config: ServingConfig) -> str:
    low, high = min(config.mean), max(config.mean)
    return f"{low:.4g}" if low == high else f"{low:.4g}–{high:.4g}"


def dtype_warning(config: ServingConfig, dtype: np.dtype | str,
                  what: str = "the input") -> str | None:
    """A warning when ``dtype`` holds values of another range than the training dtype (8-bit
    against 16-bit, 32-bit or float), naming both and the training band means."""
    trained = np.dtype(config.input_dtype)
    if _eight_bit(dtype) == _eight_bit(trained):
        return None
    return (f"{what} is {np.dtype(dtype).name}, but the model was trained on {trained.name} "
            f"pixels (band means {_means(config)}): values of another range than training's "
            f"give a wrong mask; predict the original {trained.name} data if you have it")


def value_warning(config: ServingConfig, sample: np.ndarray, nodata: Nodata,
                  what: str = "the input") -> str | None:
    """A warning when most valid pixels of ``sample`` ((N, C) raw pixels) lie beyond the
    training mean +- FAR_STD std in some band."""
    valid = sample[~invalid_pixels(sample, nodata)].astype(np.float64)
    if len(valid) < MIN_SAMPLE:
        return None
    mean = np.asarray(config.mean, np.float64)
    std = np.maximum(np.asarray(config.std, np.float64), 1e-6)
    far = float((np.abs(valid - mean) > FAR_STD * std).any(axis=1).mean())
    if far > FAR_SHARE:
        medians = np.median(valid, axis=0)
        return (f"{what}: {far:.0%} of the sampled pixels lie beyond the training mean ± "
                f"{FAR_STD:g} std in some band (training band means {_means(config)}, these "
                f"pixels' medians {medians.min():.4g}–{medians.max():.4g}): a stretched or "
                f"rescaled copy? its mask is likely wrong")
    spread = valid.std(axis=0)
    if (spread * NARROW < std).all():
        return (f"{what}: the sampled pixels vary over {NARROW:g} times less than the "
                f"training pixels in every band (std {spread.min():.3g}–{spread.max():.3g}, "
                f"training {min(config.std):.4g}–{max(config.std):.4g}): rescaled values "
                f"(reflectance 0–1 for a model trained on digital numbers?) or a constant "
                f"image? its mask is likely wrong")
    return None


def pixel_warnings(config: ServingConfig, dtype: np.dtype | str, sample: np.ndarray,
                   nodata: Nodata, what: str = "the input") -> list[str]:
    """The dtype warning, else the value warning (one line about the pixels at most)."""
    warning = dtype_warning(config, dtype, what) or value_warning(config, sample, nodata, what)
    return [warning] if warning else []


def _starts(offset: int, length: int, side: int) -> Sequence[int]:
    return sorted({int(round(x)) for x in np.linspace(offset, offset + length - side,
                                                      SAMPLE_WINDOWS)})


def sample_dataset(dataset, bands: ImageBands, region: Window | None = None) -> np.ndarray:
    """(N, C) raw pixels of SAMPLE_WINDOWS x SAMPLE_WINDOWS small windows spread over
    ``region`` (the whole raster by default), in the ``bands`` the model reads (masked
    pixels NaN). A window that cannot be read is left out (prediction, which reads
    everything, names the file)."""
    if region is None:
        region = Window(0, 0, dataset.width, dataset.height)
    height = min(SAMPLE_SIDE, int(region.height))
    width = min(SAMPLE_SIDE, int(region.width))
    parts = []
    for row in _starts(int(region.row_off), int(region.height), height):
        for col in _starts(int(region.col_off), int(region.width), width):
            try:
                pixels = read_pixels(dataset, Window(col, row, width, height), bands)
            except RasterioError:
                continue
            parts.append(pixels.reshape(-1, pixels.shape[-1]))
    if not parts:
        return np.empty((0, len(bands.indexes)), band_dtype(dataset))
    return np.concatenate(parts)


def sample_array(image: np.ndarray) -> np.ndarray:
    """(N, C) pixels of an (H, W, C) array: a regular grid of at most SAMPLE_SIDE pixels
    along each axis (the array is in memory: any pixel is as cheap as another)."""
    side = SAMPLE_SIDE
    rows = np.unique(np.linspace(0, image.shape[0] - 1, min(side, image.shape[0])).round())
    cols = np.unique(np.linspace(0, image.shape[1] - 1, min(side, image.shape[1])).round())
    return image[np.ix_(rows.astype(int), cols.astype(int))].reshape(-1, image.shape[-1])
