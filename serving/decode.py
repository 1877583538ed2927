"""Request decoding and validation for the scoring server: params, tensors, base64 images and
base64 .npy arrays in, clear ``RequestError`` messages out (the pyfunc answers them with HTTP
400). Every size is checked from the header, before any pixel is decoded."""

from __future__ import annotations

import binascii
import contextlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.errors import RasterioIOError
from rasterio.io import MemoryFile

from serving.config import MAX_OVERLAP, ServingConfig
from serving.image_bands import band_count_problem
from serving.json_body import NAN_TEXT, is_nan_text
from serving.quiet import plain_images_quiet
from serving.wording import counted

OUTPUTS = ("mask", "probabilities")
#: Request params: name -> (MLflow type, default); the model's signature declares them.
#: overlap's default is the model's own (ServingConfig.overlap).
#: pixel_size (PIXEL_SIZE_MEANING; also ``segpipe predict --pixel-size`` and the web app's
#: field) has no default: such inputs are resampled by the model's scale.
#: nodata (the nodata value of an input that declares none: arrays, plain images, a GeoTIFF
#: without one) has none either: such inputs take the model's; NAN_TEXT ("nan") for NaN.
PARAMS: dict[str, tuple[str, Any]] = {"tta": ("boolean", False), "overlap": ("double", None),
                                      "output": ("string", OUTPUTS[0]),
                                      "resample": ("boolean", True),
                                      "pixel_size": ("double", None),
                                      "nodata": ("double", None)}
#: What pixel_size means, wherever a user may give it.
PIXEL_SIZE_MEANING = ("metres per pixel of an image that carries no pixel size in metres (no "
                      "projected CRS: a PNG, JPEG or array; a world file without CRS): a model "
                      "with a training resolution resamples it by pixel_size / gsd; ignored "
                      "for an image in a projected CRS, whose own pixel size counts")
#: Longest piece of a client's input quoted back in an error message.
EXCERPT = 40
#: The GDAL drivers an uploaded image is opened with. GDAL tells formats by their bytes,
#: whatever the name: left to it, it would also open a VRT, an XML file naming other files
#: on the server to read (and dozens of other formats nobody sends here).
UPLOAD_DRIVERS = ["GTiff", "PNG", "JPEG"]
#: How much of a file GDAL reads to tell its format (GDALOpenInfo's header bytes).
HEAD_BYTES = 1024


def is_vrt_xml(head: bytes) -> bool:
    """Whether GDAL takes a file starting with ``head`` (its first ``HEAD_BYTES``) for a VRT,
    whatever its name: its VRT driver looks for ``<VRTDataset`` anywhere in them (after an
    XML declaration or a comment too)."""
    return b"<VRTDataset" in head[:HEAD_BYTES]


def is_ogr_vrt_xml(head: bytes) -> bool:
    """Whether OGR takes a file starting with ``head`` for its vector VRT, whatever its name:
    XML naming other data sources (any file, any driver) to read as layers."""
    return b"<OGRVRTDataSource" in head[:HEAD_BYTES]


def undecodable(head: bytes, what: str, size: int) -> str:
    """The message for bytes that are not an image the server takes (``head``: the first
    ``HEAD_BYTES``)."""
    if is_vrt_xml(head):
        return (f"{what}: a GDAL VRT is not accepted (it names files to read on the server); "
                f"send the raster itself, e.g. gdal_translate it to a GeoTIFF")
    return f"{what}: undecodable image, not a GeoTIFF, PNG or JPEG ({size} bytes)"


class RequestError(ValueError):
    """A request the model cannot answer; the message says what is wrong with it."""


def excerpt(value: Any) -> str:
    """A short quote of client input for an error message, never the whole of it."""
    text = repr(value)
    return text if len(text) <= EXCERPT else f"{text[:EXCERPT]}... ({len(text)} characters)"


@dataclass(frozen=True)
class RequestParams:
    tta: bool
    overlap: float
    output: str
    resample: bool
    pixel_size: float | None = None
    nodata: float | None = None


def param_defaults(config: ServingConfig) -> dict[str, Any]:
    return {name: config.overlap if name == "overlap" else default
            for name, (_, default) in PARAMS.items()}


def check_params(params: dict[str, Any] | None, config: ServingConfig) -> RequestParams:
    """Request params, defaults from PARAMS and the config; unknown names and bad values are
    errors."""
    params = params or {}
    if unknown := sorted(set(params) - set(PARAMS)):
        raise RequestError(f"unknown params {', '.join(excerpt(n) for n in unknown[:5])}; the "
                           f"model takes {', '.join(sorted(PARAMS))}")
    values = {**param_defaults(config), **{k: v for k, v in params.items() if v is not None}}
    try:
        overlap = float(values["overlap"])
    except (TypeError, ValueError):
        raise RequestError(f"param overlap must be a number, got "
                           f"{excerpt(values['overlap'])}") from None
    if not 0.0 <= overlap <= MAX_OVERLAP:
        raise RequestError(f"param overlap must be between 0 and {MAX_OVERLAP}, got {overlap}")
    if values["output"] not in OUTPUTS:
        raise RequestError(f"param output must be one of {list(OUTPUTS)}, got "
                           f"{excerpt(values['output'])}")
    for name in ("tta", "resample"):
        if not isinstance(values[name], bool | np.bool_):
            raise RequestError(f"param {name} must be true or false, got {excerpt(values[name])}")
    return RequestParams(tta=bool(values["tta"]), overlap=overlap, output=values["output"],
                         resample=bool(values["resample"]),
                         pixel_size=check_pixel_size(values.get("pixel_size"),
                                                     values["resample"]),
                         nodata=_nodata(values.get("nodata")))


def _nodata(value: Any) -> float | None:
    if value is None:
        return None
    if is_nan_text(value):
        return float("nan")
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise RequestError(f'param nodata must be a number or "{NAN_TEXT}", got '
                           f'{excerpt(value)}')
    return float(value)


def check_pixel_size(value: Any, resample: bool = True,
                     name: str = "param pixel_size") -> float | None:
    """A pixel_size (PIXEL_SIZE_MEANING) as a float, None for none; a RequestError naming
    it (``name``: the param, or a command's flag) otherwise."""
    if value is None:
        return None
    try:
        size = float(value)
    except (TypeError, ValueError):
        raise RequestError(f"{name} must be a number, got {excerpt(value)}") from None
    if not (size > 0 and np.isfinite(size)) or isinstance(value, bool):
        raise RequestError(f"{name} must be a positive number of metres, got "
                           f"{excerpt(value)}")
    if not resample:
        raise RequestError(f"{name} asks for resampling, param resample is false")
    return size


class PixelBudget:
    """The request's pixel limit, spent image by image before any of them is predicted.

    An answer of probabilities holds a float32 per class where a mask holds one byte, so with
    ``per_pixel`` (the class count) each pixel counts once per class: the answer, and the
    server's memory, stay bounded by the same limit (serving/sizing.py)."""

    def __init__(self, limit: int, per_pixel: int = 1):
        self.limit, self.per_pixel, self.used = limit, per_pixel, 0

    def spend(self, pixels: int, what: str) -> None:
        cost = pixels * self.per_pixel
        counted = "" if self.per_pixel == 1 else \
            f" x {self.per_pixel} classes = {cost} (probabilities count once per class)"
        if cost > self.limit:
            raise RequestError(f"too many pixels: {what} has {pixels}{counted}, the limit per "
                               f"request is {self.limit}")
        self.used += cost
        if self.used > self.limit:
            per_class = "" if self.per_pixel == 1 else " (probabilities count once per class)"
            raise RequestError(f"too many pixels: the request's images have {self.used} or "
                               f"more{per_class}, the limit per request is {self.limit}")


def check_bands(bands: int, config: ServingConfig, what: str) -> None:
    if bands != config.in_channels:
        raise RequestError(f"wrong band count: {what} has {counted(bands, 'band')}, the model "
                           f"expects {config.in_channels}")


def check_tensor(data: Any, config: ServingConfig) -> np.ndarray:
    """Tensor input -> (N, H, W, C) numeric array, or RequestError naming the problem."""
    if isinstance(data, dict):
        if len(data) != 1:
            raise RequestError(f"tensor input must hold one array, got keys "
                               f"{', '.join(excerpt(key) for key in list(data)[:5])}")
        data = next(iter(data.values()))
    try:
        array = np.asarray(data)
    except ValueError:  # ragged nested lists
        raise RequestError("tensor input is not a rectangular array") from None
    return check_images(array, config, "tensor input")


def check_images(array: np.ndarray, config: ServingConfig, what: str) -> np.ndarray:
    """(H, W, C) or (N, H, W, C) -> (N, H, W, C) numeric, non-empty, with the model's bands."""
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise RequestError(f"{what} must have shape (N, H, W, C) or (H, W, C), "
                           f"got {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) \
            or np.issubdtype(array.dtype, np.complexfloating):
        raise RequestError(f"{what} must be real numbers, got dtype {array.dtype}")
    if min(array.shape[:3]) == 0:
        raise RequestError(f"{what} is empty: shape {array.shape}")
    check_bands(array.shape[3], config, f"{what} of shape {array.shape}")
    return array


def decode_base64(value: Any, what: str) -> bytes:
    """Base64 text (a ``data:`` URL prefix allowed) -> bytes, decoded straight from the
    request's string: no ASCII copy of it first (it may be most of a 1 GB request)."""
    if isinstance(value, bytes | bytearray):
        text, comma = value, b","
    elif isinstance(value, str):
        text, comma = value, ","
    else:
        raise RequestError(f"{what}: expected a base64 string, got {type(value).__name__}")
    if text[:5] in ("data:", b"data:") and comma in text:  # data URL
        text = text.split(comma, 1)[1]
    try:
        # what base64.b64decode(validate=True) runs, after copying a str to bytes
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):  # ValueError: a str that is not ASCII
        raise RequestError(f"{what}: not valid base64 (starts {excerpt(text[:20])})") from None


@contextlib.contextmanager
def open_image(raw: bytes, what: str, config: ServingConfig) -> Iterator[Any]:
    """Open encoded GeoTIFF/PNG/JPEG bytes lazily (the header only) and check the bands."""
    if not raw:  # MemoryFile(b"") would open for writing
        raise RequestError(f"{what}: empty (no bytes)")
    with MemoryFile(raw) as memfile:
        try:
            with plain_images_quiet():
                dataset = memfile.open(driver=UPLOAD_DRIVERS)
        except RasterioIOError:
            raise RequestError(undecodable(raw[:HEAD_BYTES], what, len(raw))) from None
        with dataset:
            if problem := band_count_problem(dataset, config.in_channels):
                raise RequestError(f"wrong band count: {what} ({dataset.width}x"
                                   f"{dataset.height}) has {problem}, the model expects "
                                   f"{config.in_channels}")
            yield dataset


def decode_npy(raw: bytes, what: str, config: ServingConfig,
               check_size: Callable[[int, int], None]) -> np.ndarray:
    """.npy bytes -> (H, W, C) array. The header (version, dtype, shape) is read and checked,
    ``check_size(height, width)`` included, before the data; no pickles."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(stream)
    except (ValueError, TypeError, SyntaxError, EOFError):
        raise RequestError(f"{what}: not a .npy array (starts {excerpt(raw[:12])})") from None
    if dtype.hasobject or dtype.fields is not None:
        raise RequestError(f"{what}: .npy dtype {dtype} is not plain numbers")
    if len(shape) != 3:
        raise RequestError(f"{what}: .npy array must have shape (H, W, C), got {shape}")
    check_bands(shape[2], config, f"{what} of shape {shape}")
    if min(shape) == 0:
        raise RequestError(f"{what}: .npy array is empty: shape {shape}")
    check_size(shape[0], shape[1])
    data = memoryview(raw)[stream.tell():]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise RequestError(f"{what}: .npy data has {len(data)} bytes, its header's shape "
                           f"{shape} {dtype} needs {expected}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return check_images(array, config, what)[0]


__all__ = ["HEAD_BYTES", "OUTPUTS", "PARAMS", "PixelBudget", "RequestError", "RequestParams",
           "check_bands", "check_params", "check_pixel_size", "PIXEL_SIZE_MEANING",
           "check_tensor", "decode_base64", "decode_npy",
           "excerpt", "is_ogr_vrt_xml", "is_vrt_xml", "open_image", "param_defaults", "undecodable",
           "UPLOAD_DRIVERS"]
