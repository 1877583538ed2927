"""Blended prediction with a model's own normalization, classes and resolution: arrays and
rasterio datasets in, probabilities or class masks on the input's grid out. File output
lives in serving/scene.py."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Literal

import numpy as np
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from rasterio.windows import Window

from serving.bands import band_nodata
from serving.blending import (
    MAX_PANEL_WIDTH,
    BlendOptions,
    Block,
    PredictFn,
    array_reader,
    assemble,
    blend,
)
from serving.config import ServingConfig
from serving.image_bands import ImageBands, image_bands, read_pixels
from serving.pixels import Nodata, fill_invalid, invalid_pixels, normalize_image
from serving.quiet import plain_images_quiet
from serving.resolution import IMAGE_RESAMPLING, ModelGrid, resample_factor

Output = Literal["mask", "probabilities"]
#: Raster dtypes an in-memory array keeps when it is resampled; others become float32.
_RASTER_DTYPES = {"uint8", "uint16", "int16", "uint32", "int32", "float32"}


class ReadError(ValueError):
    """Pixels of a raster could not be read (truncated or corrupt data); the caller names
    the file or request. ``detail`` is GDAL's own account, which names the dataset's path
    (fine for a user's file, not for a server's answer)."""

    def __init__(self, detail: str):
        super().__init__("cannot read pixels (truncated or corrupt data?)")
        self.detail = detail


def keras_predict_fn(model) -> PredictFn:
    """Forward pass of a Keras model, one call at a time (the scoring server runs requests in
    threads; TensorFlow already spreads one call over the cores)."""
    lock = threading.Lock()

    def predict(batch: np.ndarray) -> np.ndarray:
        with lock:
            return np.asarray(model.predict_on_batch(batch))

    return predict


#: Bytes of scores one pass of ``class_ids`` takes at a time: a chunk stays in the core's
#: cache across the passes over it.
_CLASS_ID_CHUNK = 256 * 1024


def class_ids(scores: np.ndarray) -> np.ndarray:
    """``np.argmax(scores, axis=-1)`` as uint8 for (H, W, K) scores (the first of equal
    maxima wins, as argmax's), at most 255 classes. A pass per class over a chunk of rows
    with the running maximum, 1.5-3x faster than argmax, whose inner loop runs over the K
    values of one pixel. NaN never wins here, where argmax would pick it; a model that
    answers NaN is broken either way."""
    height, width, classes = scores.shape
    mask = np.zeros((height, width), np.uint8)
    rows = max(1, _CLASS_ID_CHUNK // max(1, width * classes * scores.itemsize))
    best = np.empty((min(rows, height), width), scores.dtype)
    greater = np.empty(best.shape, bool)
    select = np.empty(best.shape, np.uint8)
    for top in range(0, height, rows):
        chunk, out = scores[top:top + rows], mask[top:top + rows]
        n = len(chunk)
        np.copyto(best[:n], chunk[..., 0])
        for k in range(1, classes):
            np.greater(chunk[..., k], best[:n], out=greater[:n])
            # out = k where greater, without a branch per pixel (masked copies mispredict
            # on noisy scores): out ^= (out ^ k) & (0 - greater)
            np.negative(greater[:n].view(np.uint8), out=select[:n])
            select[:n] &= out ^ np.uint8(k)
            out ^= select[:n]
            np.maximum(best[:n], chunk[..., k], out=best[:n])
    return mask


def wire_fill(mean: list[float], nodata: Nodata) -> np.ndarray | float:
    """What an invalid pixel travels as to a server (ScenePredictor with ``normalize=False``):
    the model's mean per band (as float32, which the server subtracts), so the model sees
    the 0 it sees there locally and the server answers its probabilities, as a local
    prediction blends them. A model pixel GDAL leaves invalid on a resampled grid may hold
    the centre of a valid scene pixel, which takes its class. NaN, which the server ignores
    (all-zero probabilities), only where the server would take the mean for nodata."""
    fill = np.asarray(mean, np.float32)
    if not isinstance(nodata, tuple) and nodata is not None and bool((fill == nodata).all()):
        return np.nan
    return fill


class ScenePredictor:
    """A forward pass plus the ServingConfig that turns raw pixels into its input.

    ``normalize=False`` hands raw pixels to ``predict_fn`` (a remote server normalizes),
    as floats with the invalid pixels ``wire_fill``: the model's mean, which the server
    normalizes to the 0 a local prediction feeds the model there (the client decides which
    scene pixels are invalid, on the scene's grid)."""

    def __init__(self, predict_fn: PredictFn, config: ServingConfig, normalize: bool = True):
        self.predict_fn = predict_fn
        self.config = config
        self.normalize = normalize

    def options(self, tta: bool = False, overlap: float | None = None,
                batch_size: int | None = None, max_panel_width: int = MAX_PANEL_WIDTH,
                deadline: float | None = None) -> BlendOptions:
        return BlendOptions(
            window=self.config.patch_size, num_classes=self.config.num_classes,
            overlap=self.config.overlap if overlap is None else overlap,
            batch_size=batch_size or self.config.batch_size, tta=tta,
            max_panel_width=max_panel_width, deadline=deadline)

    def warm_up(self) -> None:
        """Trace the forward pass for a full and a partial batch before real work: Keras then
        generalizes the batch dimension, so later partial batches do not retrace."""
        side, bands = self.config.patch_size, self.config.in_channels
        for size in sorted({self.config.batch_size, 1}, reverse=True):
            self.predict_fn(np.zeros((size, side, side, bands), np.float32))

    def _prepare(self, nodata: Nodata):
        mean, std = self.config.mean, self.config.std

        def prepare(raw: np.ndarray,
                    out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
            invalid = invalid_pixels(raw, nodata)
            if self.normalize:
                return normalize_image(raw, mean, std, nodata, invalid, out), invalid
            return fill_invalid(raw, invalid, fill, out), invalid

        fill = None if self.normalize else wire_fill(mean, nodata)
        return prepare

    def to_mask(self, scores: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        """Class ids from (H, W, K) probabilities, or any positive per-pixel multiple of
        them such as a Block's ``weighted``; ignore_index where the input was invalid."""
        mask = class_ids(scores)
        mask[invalid] = self.config.ignore_index
        return mask

    def block_mask(self, block: Block) -> np.ndarray:
        """A finished block's class ids: every mask (arrays, scenes, the server) comes from
        here, so ties that the division would round away break the same way everywhere."""
        return self.to_mask(block.weighted, block.invalid)

    def assemble(self, blocks: Iterator[Block], height: int, width: int,
                 output: Output = "mask") -> np.ndarray:
        """Finished blocks -> one (H, W) uint8 mask or (H, W, K) float32 probabilities."""
        return assemble(blocks, height, width, self.config.num_classes,
                        self.block_mask if output == "mask" else None)

    def resample_factor(self, dataset=None, resample: bool = True,
                        pixel_size: float | None = None) -> float:
        """serving.resolution.resample_factor; 1.0 without ``resample``."""
        return resample_factor(self.config, dataset, pixel_size) if resample else 1.0

    def predict_array(self, image: np.ndarray, *, tta: bool = False,
                      overlap: float | None = None, output: Output = "mask",
                      nodata: float | None = None, resample: bool = True,
                      pixel_size: float | None = None,
                      deadline: float | None = None) -> np.ndarray:
        """(H, W, C) raw pixels -> (H, W) uint8 mask or (H, W, K) float32 probabilities.

        With ``resample`` the image is taken to the model's resolution (``config.gsd``
        given its ``pixel_size`` in metres, else ``config.scale``) and the answer brought
        back to the image's grid. Past ``deadline`` (``time.monotonic()``) no further batch
        starts: DeadlinePassed."""
        nodata = self.config.nodata if nodata is None else nodata
        height, width = image.shape[:2]
        grid = ModelGrid(height, width, self.resample_factor(None, resample, pixel_size))
        if grid.identity:
            blocks = blend(array_reader(image), height, width, self.predict_fn,
                           self._prepare(nodata), self.options(tta, overlap, deadline=deadline))
            return self.assemble(blocks, height, width, output)
        with array_dataset(image, nodata) as dataset:
            blocks = self.iter_dataset(dataset, tta=tta, overlap=overlap, nodata=nodata,
                                       factor=grid.factor, deadline=deadline)
            return self.assemble(blocks, height, width, output)

    def iter_dataset(self, dataset, *, tta: bool = False, overlap: float | None = None,
                     batch_size: int | None = None, max_panel_width: int = MAX_PANEL_WIDTH,
                     region: Window | None = None, nodata: Nodata = None,
                     factor: float | None = None, deadline: float | None = None,
                     bands: ImageBands | None = None) -> Iterator[Block]:
        """Finished blocks of a rasterio dataset on its own grid, read window by window (all
        bands) at the model's resolution.

        ``region`` restricts prediction to a window of the dataset; block rows and columns
        are then relative to it and its edges are reflect-padded like the scene's.
        ``factor`` overrides ``resample_factor(dataset)`` (1.0: predict the pixels as they
        are). ``bands``: serving.image_bands.image_bands(dataset), computed here by default.
        A failed read raises ReadError; a passed ``deadline``, DeadlinePassed."""
        if bands is None:
            bands = image_bands(dataset, self.config.in_channels)
        if nodata is None:
            nodata = band_nodata(dataset, self.config.nodata, bands.indexes)
        if region is None:
            region = Window(0, 0, dataset.width, dataset.height)
        row_off, col_off = int(region.row_off), int(region.col_off)
        height, width = int(region.height), int(region.width)
        grid = ModelGrid(height, width,
                         self.resample_factor(dataset) if factor is None else factor)
        options = self.options(tta, overlap, batch_size, max_panel_width, deadline)
        prepare = self._prepare(nodata)

        def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            window = Window(col_off + c0, row_off + r0, c1 - c0, r1 - r0)
            return _read(dataset, window, bands)

        if grid.identity:
            yield from blend(read, height, width, self.predict_fn, prepare, options)
            return

        def read_model_grid(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            window = grid.source_window(r0, r1, c0, c1)
            window = Window(col_off + window.col_off, row_off + window.row_off, window.width,
                            window.height)
            return _read(dataset, window, bands, (r1 - r0, c1 - c0))

        def invalid(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            return invalid_pixels(read(r0, r1, c0, c1), nodata)

        for block in blend(read_model_grid, grid.rows, grid.cols, self.predict_fn, prepare,
                           options):
            on_input = grid.to_input(block, invalid)
            if on_input is not None:
                yield on_input


def _read(dataset, window: Window, bands: ImageBands,
          shape: tuple[int, int] | None = None) -> np.ndarray:
    """serving.image_bands.read_pixels with Lanczos; ReadError when GDAL cannot read them."""
    try:
        return read_pixels(dataset, window, bands, shape, IMAGE_RESAMPLING)
    except RasterioError as exc:
        raise ReadError(str(exc.__cause__ or exc)) from None


@contextlib.contextmanager
def array_dataset(image: np.ndarray, nodata: float | None) -> Iterator:
    """An (H, W, C) array as an in-memory raster, so GDAL resamples it as it does files."""
    if image.dtype.name not in _RASTER_DTYPES:
        image = image.astype(np.float32)
    height, width, bands = image.shape
    if nodata is None and image.dtype.kind == "f":
        nodata = np.nan  # resampled as GDAL resamples a file's nodata: left out of kernels
    if nodata is not None and np.issubdtype(image.dtype, np.integer):
        limits = np.iinfo(image.dtype)
        if not (float(nodata).is_integer() and limits.min <= nodata <= limits.max):
            nodata = None  # a nodata the dtype cannot hold marks no pixel
    profile = {"driver": "GTiff", "width": width, "height": height, "count": bands,
               "dtype": image.dtype.name, "nodata": nodata}
    with MemoryFile() as memfile, plain_images_quiet():
        with memfile.open(**profile) as dst:
            dst.write(np.moveaxis(image, -1, 0))
        with memfile.open() as dataset:
            yield dataset
