"""One scoring request, from MLflow's parsed input to the answer: every input is decoded as far
as its header and checked (bands, pixel limits of each image and of the request) before any
of them is predicted. Plain Python; serving/pyfunc.py maps its errors to HTTP.

Routes:
- tensor (``{"inputs": ...}``): raw pixels (N, H, W, C) -> (N, H, W) class ids or
  (N, H, W, K) probabilities (MLflow checks it against the model's signature first; called
  in-process, an (H, W, C) image is taken as a batch of one);
- dataframe column ``image``: base64 GeoTIFF/PNG/JPEG -> column ``mask`` (PNG, or GeoTIFF
  with the input's CRS and transform) or ``probabilities`` (float32 GeoTIFF);
- dataframe column ``npy``: base64 ``.npy`` (H, W, C) raw pixels -> column ``mask`` or
  ``probabilities`` as base64 ``.npy`` (binary both ways: no JSON numbers to parse).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from typing import Any

import numpy as np

from serving.bands import band_dtype, is_colour_key
from serving.decode import (
    PixelBudget,
    RequestError,
    RequestParams,
    check_params,
    check_tensor,
    decode_base64,
    decode_npy,
    excerpt,
    open_image,
)
from serving.encode import encode_mask, encode_npy, encode_probabilities
from serving.image_bands import ImageBands, alpha_tag_warning, image_bands
from serving.inputs import pixel_warnings, sample_array, sample_dataset
from serving.predict import ReadError, ScenePredictor
from serving.resolution import ModelGrid, resolution_warning, shrink_problem
from serving.windows import DeadlinePassed

IMAGE_COLUMN, NPY_COLUMN = "image", "npy"
#: Answer column of the dataframe routes with each input's warnings (serving/inputs.py), a
#: list of lines per row; there only when some input has one.
WARNINGS_COLUMN = "warnings"
COLUMNS = (IMAGE_COLUMN, NPY_COLUMN)
#: Requests predicted at once by one server process: one blends while the other's forward
#: pass runs (the model takes one batch at a time anyway). MLflow runs every request on its
#: own thread; more at once only oversubscribe the cores, so the rest wait their turn.
REQUESTS_AT_ONCE = 2
#: The ``time.monotonic()`` after which the request being answered is abandoned: its client
#: was answered 504, so no further batch of it starts (DeadlinePassed). Set by the model
#: server (serving/guard.py), which finds it as ``RequestHandler.deadline``; None: no deadline.
DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "segpipe_request_deadline", default=None)


class RequestHandler:
    deadline = DEADLINE

    def __init__(self, predictor: ScenePredictor, at_once: int = REQUESTS_AT_ONCE):
        self.predictor = predictor
        self.config = predictor.config
        self.at_once = at_once
        self._turns = threading.BoundedSemaphore(at_once)

    def __call__(self, model_input: Any, params: dict[str, Any] | None) -> Any:
        with self._turns:
            deadline = DEADLINE.get()
            if deadline is not None and time.monotonic() > deadline:
                raise DeadlinePassed("the request's deadline passed while it waited its turn")
            return self._answer(model_input, params)

    def _answer(self, model_input: Any, params: dict[str, Any] | None) -> Any:
        request = check_params(params, self.config)
        import pandas as pd

        if not isinstance(model_input, pd.DataFrame):
            return self._tensor(model_input, request)
        columns = [str(c) for c in model_input.columns]
        if len(columns) != 1 or columns[0] not in COLUMNS:
            raise RequestError(f"dataframe input needs one column, {IMAGE_COLUMN!r} (base64 "
                               f"images) or {NPY_COLUMN!r} (base64 .npy arrays); got "
                               f"{', '.join(excerpt(c) for c in columns[:5]) or 'no column'}")
        values = list(model_input[columns[0]])
        notes: list[list[str]] = []
        if columns[0] == NPY_COLUMN:
            answers = self._npy(values, request, notes)
        else:
            answers = self._images(values, request, notes)
        # object dtype: pandas 3 would copy the strings into Arrow memory
        if any(notes):  # a column only when there is something to say
            return pd.DataFrame({request.output: answers, WARNINGS_COLUMN: notes},
                                dtype=object)
        return pd.DataFrame({request.output: answers}, dtype=object)

    def _budget(self, request: RequestParams) -> PixelBudget:
        classes = self.config.num_classes if request.output == "probabilities" else 1
        return PixelBudget(self.config.max_pixels, per_pixel=classes)

    def _grid(self, height: int, width: int, request: RequestParams, what: str,
              dataset=None) -> ModelGrid:
        """The input's model grid; refused when it spans under half a pixel a side there
        (resolution.py shrink_problem)."""
        grid = ModelGrid(height, width, self.predictor.resample_factor(
            dataset, request.resample, request.pixel_size))
        if problem := shrink_problem(self.config, grid, dataset, request.pixel_size, what):
            raise RequestError(problem)
        return grid

    def _warnings(self, what: str, dtype, sample: np.ndarray, nodata: float | None,
                  request: RequestParams, dataset=None,
                  alpha_note: str | None = None) -> list[str]:
        """serving/inputs.py's warnings about one input, and why it is not resampled to the
        model's gsd when it is not. None for ``resample=false``: those are windows a client
        cut from a scene it has checked whole (``segpipe predict --endpoint``), sent in the
        smallest type that holds them (a dark window of an int16 scene travels as uint8).
        ``alpha_note``: how an image's alpha tag was read (alpha_tag_warning)."""
        if not request.resample:
            return []
        notes = pixel_warnings(self.config, dtype, sample, nodata, what)
        if warning := resolution_warning(self.config, dataset, request.pixel_size, what):
            notes.insert(0, warning)
        if alpha_note:
            notes.insert(0, alpha_note)
        return notes

    def _tensor(self, model_input: Any, request: RequestParams) -> np.ndarray:
        images = check_tensor(model_input, self.config)
        budget = self._budget(request)
        for i, image in enumerate(images):
            what = _named("tensor image", i, len(images))
            grid = self._grid(*image.shape[:2], request, what)
            budget.spend(grid.pixels, f"{what} ({grid.describe()})")
        results = np.stack([self._array(image, request) for image in images])
        # strict JSON has no NaN or Infinity: a model's non-finite answer becomes 0
        return np.nan_to_num(results, copy=False, nan=0.0, posinf=0.0, neginf=0.0)

    def _array(self, image: np.ndarray, request: RequestParams) -> np.ndarray:
        return self.predictor.predict_array(image, tta=request.tta, overlap=request.overlap,
                                            output=request.output, resample=request.resample,
                                            pixel_size=request.pixel_size,
                                            nodata=self._nodata(request),
                                            deadline=DEADLINE.get())

    def _nodata(self, request: RequestParams, dataset=None) -> float | None:
        """What marks an input's invalid pixels (every band equal to it): the input's own
        declared nodata, else the request's ``nodata``, else the model's (docs/serving.md,
        Pixels, nodata and the answer). A colour key (a PNG's tRNS) is no nodata: its mask
        marks those pixels (serving.bands.is_colour_key)."""
        if dataset is not None and dataset.nodata is not None and not is_colour_key(dataset):
            return dataset.nodata
        return self.config.nodata if request.nodata is None else request.nodata

    def _npy(self, values: list[Any], request: RequestParams,
             notes: list[list[str]]) -> list[str]:
        budget = self._budget(request)
        images = []
        for i, value in enumerate(values):
            what = _named(f"{NPY_COLUMN} array", i, len(values))

            def check_size(height: int, width: int, what: str = what) -> None:
                grid = self._grid(height, width, request, what)
                budget.spend(grid.pixels, f"{what} ({grid.describe()})")

            images.append(decode_npy(decode_base64(value, what), what, self.config,
                                     check_size))
            notes.append(self._warnings(what, images[-1].dtype, sample_array(images[-1]),
                                        self._nodata(request), request))
        answers = []
        for i in range(len(images)):
            result = self._array(images[i], request)
            images[i] = None  # frees the decoded pixels before the answer is encoded
            answers.append(encode_npy(result))
            del result
        return answers

    def _images(self, values: list[Any], request: RequestParams,
                notes: list[list[str]]) -> list[str]:
        budget = self._budget(request)
        with contextlib.ExitStack() as stack:
            opened = []
            for i, value in enumerate(values):
                what = _named("image", i, len(values))
                dataset = stack.enter_context(
                    open_image(decode_base64(value, what), what, self.config))
                grid = self._grid(dataset.height, dataset.width, request, what, dataset)
                budget.spend(grid.pixels, f"{what} ({grid.describe()})")
                # Before any pixel is read: a failed read leaves GDAL's error behind, which
                # rasterio would raise from the next call asking for band tags.
                bands = image_bands(dataset, self.config.in_channels)
                alpha_note = alpha_tag_warning(dataset, self.config.in_channels, what)
                nodata = self._nodata(request, dataset)
                opened.append((what, dataset, grid, bands))
                sample = sample_dataset(dataset, bands)
                notes.append(self._warnings(what, band_dtype(dataset), sample, nodata, request,
                                            dataset, alpha_note))
            return [self._dataset(what, dataset, grid, bands, request)
                    for what, dataset, grid, bands in opened]

    def _dataset(self, what: str, dataset, grid: ModelGrid, bands: ImageBands,
                 request: RequestParams) -> str:
        """Base64 answer for one opened image; only the result is held whole."""
        blocks = self.predictor.iter_dataset(dataset, bands=bands, tta=request.tta,
                                             overlap=request.overlap, factor=grid.factor,
                                             nodata=self._nodata(request, dataset),
                                             deadline=DEADLINE.get())
        try:
            result = self.predictor.assemble(blocks, dataset.height, dataset.width,
                                             request.output)
        except ReadError as exc:
            raise RequestError(f"{what}: {exc}") from None
        if request.output == "probabilities":
            return encode_probabilities(result, dataset)
        return encode_mask(result, self.config, dataset)


def _named(kind: str, index: int, count: int) -> str:
    """How messages name a request's images: from 1, as people count ("image 2 of 3")."""
    return f"{kind} {index + 1} of {count}"
