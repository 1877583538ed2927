"""Prediction at the resolution a model was trained at, answered on the input's own grid.

A model trained on scenes resampled by ``scale`` (or to ``gsd`` metres per pixel) sees the
input on a *model grid*: the input's extent at ``round(size * factor)`` pixels, read with
GDAL's Lanczos exactly as the tiling step read the training tiles (a fractional source
window per strip, so strips join seamlessly and memory stays bounded). Blended blocks on that
grid go back to the input grid by nearest neighbour: every input pixel takes the class (or
the probabilities) of the model pixel its centre falls in, so a mask and the argmax of the
probabilities always agree. Which input pixels are invalid is decided on the input grid."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePath

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from serving.config import ServingConfig
from serving.windows import Block

#: Resampling of the input to the model grid; the tiling step uses the same.
IMAGE_RESAMPLING = Resampling.lanczos


def pixel_size(dataset) -> float | None:
    """Metres per pixel of a raster in a projected CRS (the square root of a pixel's area,
    in the CRS's units converted to metres); None without one (plain images, arrays,
    geographic CRSs, whose degrees are no fixed length)."""
    crs = getattr(dataset, "crs", None)
    if crs is None or not crs.is_projected:
        return None
    transform = dataset.transform
    pixel = math.sqrt(abs(transform.a * transform.e - transform.b * transform.d))
    return pixel * crs.linear_units_factor[1]


def resample_factor(config: ServingConfig, dataset=None, size: float | None = None) -> float:
    """Model pixels per input pixel along each axis (0.5: the model sees half the pixels).

    ``config.gsd`` decides for inputs of a known pixel size in metres (input pixel size /
    gsd): a raster in a projected CRS, or ``size`` for one without (an array, a plain
    image; a client's ``pixel_size`` param). Anything else is resampled by
    ``config.scale``."""
    if config.gsd is None:
        return config.scale
    metres = pixel_size(dataset)
    if metres is None:
        metres = size
    return config.scale if metres is None else metres / config.gsd


def _metres(value: float) -> str:
    return f"{value:.4g} m"


def resampling_note(config: ServingConfig, grid: ModelGrid, dataset=None,
                    size: float | None = None) -> str | None:
    """One line saying how an input is resampled to the model's grid and back (None when it
    is predicted as it is), e.g. ``resampled 1 m -> 2 m (model grid 640x512) and back``."""
    if grid.identity:
        return None
    metres = pixel_size(dataset)  # its own wins over ``size``, as in resample_factor
    if metres is None:
        metres = size
    if config.gsd is not None and metres is not None:
        how = f"{_metres(metres)} -> {_metres(config.gsd)}"
    else:
        how = f"by the model's scale {config.scale:g}"
    return f"resampled {how} (model grid {grid.cols}x{grid.rows}) and back"


def _crs_less_size(dataset) -> float | None:
    """The pixel size, in unknown units, of a raster with a transform (a world file, a
    GeoTIFF's geotransform) but no CRS; None for any other."""
    if dataset is None or dataset.crs is not None or dataset.transform.is_identity:
        return None
    transform = dataset.transform
    return math.sqrt(abs(transform.a * transform.e - transform.b * transform.d))


def _has_world_file(dataset) -> bool:
    """Whether GDAL read a world file beside the raster (.tfw, .pgw, .jgw, .wld, ...)."""
    suffixes = [PurePath(name).suffix.lower() for name in dataset.files[1:]]
    return any(s == ".wld" or (len(s) == 4 and s.endswith("w")) for s in suffixes)


def resolution_warning(config: ServingConfig, dataset=None, size: float | None = None,
                       what: str = "the input",
                       option: str = "param pixel_size") -> str | None:
    """Why an input of a model that knows its training resolution (``gsd``) is not resampled
    to it: no pixel size in metres (no georeferencing, a transform without CRS, a geographic
    CRS, an array without ``size``); None when it is, or when the model knows none.
    ``option``: how the user gives the pixel size where they are (the server's param, a
    command's flag, the web app's field). A ``size`` given is said to be ignored where it
    is (a projected CRS's pixel size counts; a model without ``gsd`` resamples by its
    scale), and doubted where it enlarges the input over MAX_UPSCALE times."""
    own = pixel_size(dataset)
    if size is not None:
        return _given_size_warning(config, dataset, own, size, what, option)
    if config.gsd is None or own is not None:
        return None
    crs = getattr(dataset, "crs", None)
    if crs is not None:
        why = (f"is in a geographic CRS ({_crs_name(crs)}), whose pixels have no fixed size "
               f"in metres")
        fix = (f"give its metres per pixel ({option}) or reproject it to a projected CRS "
               f"(its UTM zone, say)")
    elif (units := _crs_less_size(dataset)) is not None:
        # As a GeoTIFF without CRS anywhere in segpipe: no unit is assumed.
        source = "world file" if _has_world_file(dataset) else "geotransform"
        why = (f"has a pixel size ({units:g} per pixel, from its {source}) but no CRS, so its "
               f"units are unknown")
        fix = (f"if they are metres, give {option} {units:g}; or add its CRS (gdal_translate "
               f"-a_srs EPSG:<code> to a GeoTIFF: GDAL reads no .prj beside a PNG or JPEG)")
    elif dataset is not None:
        why = "has no georeferencing, so its pixel size is unknown"
        fix = f"give its metres per pixel ({option}) or georeference it in a projected CRS"
    else:
        why = "carries no pixel size"
        fix = f"pass its metres per pixel ({option})"
    done = ("predicted at its own pixel size" if config.scale == 1
            else f"resampled by the model's scale {config.scale:g}")
    return (f"{what} {why}: it is {done}, not at the {_metres(config.gsd)} per pixel the "
            f"model was trained at; {fix} to have it resampled")


#: A given pixel size that enlarges the input more than this many times on the model's grid
#: is doubted aloud (a slip of units, say km for m); the pixel limit still bounds the work.
MAX_UPSCALE = 10.0


def _crs_name(crs) -> str:
    return crs.to_string() if crs.to_epsg() else "its CRS"


def _given_size_warning(config: ServingConfig, dataset, own: float | None, size: float,
                        what: str, option: str) -> str | None:
    """resolution_warning for an input whose pixel size the user gave as ``size``."""
    if own is not None:
        return (f"{option} {size:g} ignored: {what} is in {_crs_name(dataset.crs)} at "
                f"{_metres(own)} per pixel, which counts")
    if config.gsd is None:
        return (f"{option} {size:g} ignored: the model knows no training resolution, so "
                f"{what} is resampled by the model's scale {config.scale:g}")
    if size / config.gsd > MAX_UPSCALE:
        return (f"{option} {size:g}: {what} is enlarged {size / config.gsd:.3g} times to the "
                f"model's {_metres(config.gsd)} per pixel; check that it is metres per pixel")
    return None


#: The least an input may span along a side on the model's grid, in model pixels. The grid
#: keeps at least one pixel a side (ModelGrid), so any input is seen, stretched over that
#: pixel when it spans less. From half a pixel on, the pixel is mostly the input's ground
#: (rounded half up, it is one pixel: a 1-pixel strip at scale 0.5 is predicted); below
#: it, the model would see the input at over twice its ground size.
MIN_MODEL_SIDE = 0.5


def shrink_problem(config: ServingConfig, grid: ModelGrid, dataset=None,
                   size: float | None = None, what: str = "the input",
                   option: str = "param pixel_size") -> str | None:
    """Why an input cannot be predicted at the model's resolution: resampled to it, it spans
    less than MIN_MODEL_SIDE model pixels along a side, which the model would see stretched
    over its one pixel there (the other extreme, too many pixels, is a pixel limit); None
    when it spans that or more. Names what set the resampling (the input's pixel size, the
    ``pixel_size`` param or the model's scale) and the smallest pixel size an input of its
    size may have; ``option`` as resolution_warning's."""
    side = min(grid.height, grid.width)
    if side * grid.factor >= MIN_MODEL_SIDE:
        return None
    shrinks = (f"{what} ({grid.width}x{grid.height}) shrinks to under half a pixel a side at "
               f"the model's resolution")
    if config.gsd is None or (pixel_size(dataset) is None and size is None):
        return f"{shrinks} (the model's scale {config.scale:g})"
    smallest = _metres(_smallest_pixel(config.gsd, side))
    if pixel_size(dataset) is None:
        return (f"{option} {size:g}: {shrinks} ({_metres(config.gsd)} per pixel); the "
                f"limit for an input this size is {smallest} per pixel")
    return (f"{shrinks}: its pixels of {_metres(pixel_size(dataset))} against the model's "
            f"{_metres(config.gsd)}; the limit for an input this size is {smallest} per pixel")


def _smallest_pixel(gsd: float, side: int) -> float:
    """The least pixel size, in 4 significant digits, that an input ``side`` pixels across
    may have: rounded up, and up once more if float error leaves it refused, so that the
    value the message names is taken."""
    limit = MIN_MODEL_SIDE * gsd / side
    scale = 10.0 ** (3 - math.floor(math.log10(limit)))
    smallest = math.ceil(limit * scale) / scale
    if side * (smallest / gsd) < MIN_MODEL_SIDE:
        smallest = (math.ceil(limit * scale) + 1) / scale
    return smallest


def _count(pixels: int) -> str:
    """A pixel count as a message writes it: whole up to a billion, 3 digits beyond (a
    pixel size typed absurdly large gives a model grid of hundreds of digits)."""
    return str(pixels) if pixels < 10**9 else f"{pixels:.3g}"


def _nearest(length: int, model_length: int) -> np.ndarray:
    """For each input pixel, the model pixel its centre falls in (integer arithmetic)."""
    return (2 * np.arange(length, dtype=np.int64) + 1) * model_length // (2 * length)


@dataclass(frozen=True)
class ModelGrid:
    """An input of ``height`` x ``width`` pixels on the model's grid."""

    height: int
    width: int
    factor: float
    rows: int = field(init=False)
    cols: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", max(1, round(self.height * self.factor)))
        object.__setattr__(self, "cols", max(1, round(self.width * self.factor)))

    # Computed on first use: a header's claimed size is checked (``pixels``) before any
    # array of that size exists.
    @cached_property
    def _row_of(self) -> np.ndarray:
        return _nearest(self.height, self.rows)

    @cached_property
    def _col_of(self) -> np.ndarray:
        return _nearest(self.width, self.cols)

    @property
    def pixels(self) -> int:
        """The larger of the input's and the model grid's pixel counts: what a limit on
        the work checks."""
        return max(self.height * self.width, self.rows * self.cols)

    def describe(self) -> str:
        text = f"{self.width}x{self.height}"
        if self.identity:
            return text
        return f"{text} ({_count(self.cols)}x{_count(self.rows)} at the model's resolution)"

    @property
    def identity(self) -> bool:
        return (self.rows, self.cols) == (self.height, self.width)

    def source_window(self, r0: int, r1: int, c0: int, c1: int) -> Window:
        """The input area (fractional pixels) of model rows [r0, r1) and cols [c0, c1)."""
        sy, sx = self.height / self.rows, self.width / self.cols
        return Window(c0 * sx, r0 * sy, (c1 - c0) * sx, (r1 - r0) * sy)

    def to_input(self, block: Block,
                 invalid: Callable[[int, int, int, int], np.ndarray]) -> Block | None:
        """A model-grid block as the input pixels whose centres fall in it (None if none do);
        ``invalid(r0, r1, c0, c1)`` gives the input grid's invalid pixels there."""
        h, w = block.invalid.shape
        rows, cols = self._row_of, self._col_of
        r0, r1 = np.searchsorted(rows, [block.row, block.row + h])
        c0, c1 = np.searchsorted(cols, [block.col, block.col + w])
        if r0 == r1 or c0 == c1:
            return None
        pick_rows, pick_cols = rows[r0:r1] - block.row, cols[c0:c1] - block.col
        return Block(int(r0), int(c0), block.weighted[np.ix_(pick_rows, pick_cols)],
                     block.row_weight[pick_rows], block.col_weight[pick_cols],
                     invalid(int(r0), int(r1), int(c0), int(c1)))
