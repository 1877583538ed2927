"""Raster helpers shared by the data-plane steps: opening with clear errors, strip-wise
iteration (so no step holds a whole scene in memory), GeoTIFF profiles and validity masks."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from serving.bands import read_bands
from serving.decode import HEAD_BYTES, is_vrt_xml
from serving.pixels import GDAL_CACHE_MB, Nodata
from serving.pixels import invalid_pixels as _invalid_pixels
from serving.quiet import plain_images_quiet
from serving.resampled_read import read_resampled

# (stage, done, total): steps report progress through this so the CLI can draw a bar.
ProgressCallback = Callable[[str, int, int], None]

#: The raster formats a source may hold, by suffix, and the GDAL driver each is opened with
#: (with a VRT: components/discover_rules.py RASTER_SUFFIXES). GDAL tells a format by a
#: file's bytes, whatever its name; left to it, it would also open formats that name other
#: files or URLs to read (VRT, WMS, MRF, ...). A VRT is opened only once its sources are
#: checked (components/vrt_sources.py).
DRIVER_OF_SUFFIX = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG",
                    ".jpeg": "JPEG", ".jp2": "JP2OpenJPEG", ".bmp": "BMP"}
DATA_DRIVERS = list(dict.fromkeys(DRIVER_OF_SUFFIX.values()))
#: What every raster a step writes is (geotiff_profile), and is read as.
STEP_DRIVER = "GTiff"

# Rows per strip when a step streams a whole scene: bounded memory, few GDAL calls.
STRIP_ROWS = 256


class DataError(ValueError):
    """Bad input data; the message names the file and the problem."""


class SettingError(DataError):
    """Bad input data that a setting of the step's options would fix. ``template`` words it
    with ``{setting}`` where the setting goes, and ``{<field>}`` where each of ``others``
    (other settings of the same options that would fix it instead) goes; ``str()`` names
    them by their fields (``field``), and a front end names them its own way
    (``data.ingest.vector_layer``, ``--vector-layer``) with ``named``."""

    def __init__(self, template: str, field: str, others: tuple[str, ...] = ()) -> None:
        self.template, self.field, self.others = template, field, others
        super().__init__(self.named(field))

    def named(self, setting: str, others: dict[str, str] | None = None) -> str:
        """The message, the setting named ``setting`` and each of ``others`` as ``others``
        maps it (by default its field's name)."""
        text = self.template.replace("{setting}", setting)
        for field in self.others:
            text = text.replace("{" + field + "}", (others or {}).get(field, field))
        return text

    def reworded(self, reword: Callable[[str], str]) -> SettingError:
        return SettingError(reword(self.template), self.field, self.others)


def reworded(err: DataError, reword: Callable[[str], str]) -> DataError:
    """``err`` with its paths reworded (``reword``: a temporary folder -> the names the user
    knows), a ``SettingError`` still one (of its own kind, where it says so)."""
    if isinstance(err, SettingError):
        return err.reworded(reword)
    return DataError(reword(str(err)))


def gdal_env() -> rasterio.Env:
    """The GDAL settings every data-plane step runs under (the block-cache cap)."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


def check_png(path: str | Path) -> None:
    """Walk a PNG's chunks: GDAL reads a truncated PNG as zeros without a word, so a file
    cut short or with a damaged chunk is refused here, before any pixel is used."""
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            raise DataError(f"{path}: not a PNG file (bad signature)")
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise DataError(f"{path}: PNG file is truncated (no IEND chunk)")
            length, kind = struct.unpack(">I4s", head)
            body = f.read(length)
            crc = f.read(4)
            if len(body) < length or len(crc) < 4:
                raise DataError(f"{path}: PNG file is truncated inside a {kind!r} chunk")
            if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
                raise DataError(f"{path}: PNG file is corrupt (bad checksum of a {kind!r} "
                                "chunk)")
            if kind == b"IEND":
                return


def check_size(path: str | Path, width: int, height: int, max_pixels: int) -> None:
    """Refuse a raster whose declared size is over the limit before decoding any of it."""
    if width * height > max_pixels:
        raise DataError(f"{path}: {width}x{height} pixels ({width * height:,}) is more than "
                        f"max_pixels ({max_pixels:,}); raise max_pixels if the file is real")


def read_window(src: rasterio.io.DatasetReader, path: str | Path | None = None,
                **kwargs) -> np.ndarray:
    """``src.read(**kwargs)`` in the bands' common type (serving/bands.py); a truncated or
    corrupt file raises ``DataError`` naming it (GDAL opens a half-written GeoTIFF fine and
    fails only on the blocks that are missing)."""
    with _unreadable_as_data_error(src, path):
        return read_bands(src, **kwargs)


def read_mask_window(src: rasterio.io.DatasetReader, path: str | Path | None, index: int,
                     window: Window) -> np.ndarray:
    """GDAL's mask of band ``index`` over ``window`` (rows, cols; 0 where no data), with
    ``read_window``'s errors."""
    with _unreadable_as_data_error(src, path):
        return src.read_masks(index, window=window)


def read_resampled_window(src: rasterio.io.DatasetReader, path: str | Path | None,
                          window: Window, shape: tuple[int, int],
                          resampling: Resampling) -> np.ndarray:
    """(bands, *shape) of every band of ``window`` resampled with ``resampling``, invalid
    pixels (NaN ones too) left out of the kernels as serving leaves them
    (serving/resampled_read.py); errors as ``read_window``'s."""
    with _unreadable_as_data_error(src, path):
        return read_resampled(src, range(1, src.count + 1), window, shape, resampling)


@contextmanager
def _unreadable_as_data_error(src: rasterio.io.DatasetReader,
                              path: str | Path | None) -> Iterator[None]:
    try:
        yield
    except RasterioIOError as err:
        cause = err.__cause__ or err.__context__
        detail = str(cause) if cause is not None else str(err)
        raise DataError(f"{path or src.name}: cannot read pixels; the file is truncated or "
                        f"corrupt ({detail.strip()})") from None


@contextmanager
def open_raster(path: str | Path, vrt: bool = False) -> Iterator[rasterio.io.DatasetReader]:
    """Open ``path`` for reading as one of ``DATA_DRIVERS``' formats, or as a VRT with
    ``vrt`` (only for one whose sources were checked: components/vrt_sources.py);
    unreadable files raise ``DataError`` naming the file."""
    try:
        # Plain JPEG/PNG scenes are legitimately not georeferenced.
        with plain_images_quiet():
            src = _open_as(path, ["VRT"] if vrt else DATA_DRIVERS)
    except RasterioIOError as err:
        if not vrt and is_vrt(path):
            raise DataError(f"{path}: a GDAL VRT is read only as a file of a source (it "
                            f"names other files to read); gdal_translate it to a GeoTIFF"
                            ) from None
        raise DataError(f"{path}: cannot read as a raster ({err})") from None
    with src:
        yield src


def _open_as(path: str | Path, drivers: list[str]) -> rasterio.io.DatasetReader:
    """``path`` opened by the first of ``drivers`` that reads it, its suffix's first (rasterio
    takes one driver at a time); the error is that driver's (a file of another format than
    its name says is still read)."""
    first = DRIVER_OF_SUFFIX.get(Path(path).suffix.lower())
    error = None
    for driver in sorted(drivers, key=lambda d: d != first):
        try:
            return rasterio.open(path, driver=driver)
        except RasterioIOError as err:
            error = error or err
    raise error


def is_vrt(path: str | Path) -> bool:
    """Whether GDAL would open ``path`` as a VRT: by its bytes, whatever its name."""
    try:
        with open(path, "rb") as f:
            return is_vrt_xml(f.read(HEAD_BYTES))
    except OSError:
        return False


def strip_windows(width: int, height: int, rows: int = STRIP_ROWS) -> Iterator[Window]:
    for row in range(0, height, rows):
        yield Window(0, row, width, min(rows, height - row))


def invalid_pixels(bands: np.ndarray, nodata: Nodata) -> np.ndarray:
    """(C, H, W) -> (H, W) bool: serving.pixels' rule (every band nodata, or any band not a
    finite float32), which serving and training apply too."""
    return _invalid_pixels(bands, nodata, band_axis=0)


def geotiff_profile(width: int, height: int, count: int, dtype: str, crs, transform,
                    nodata: float | None = None) -> dict:
    """A tiled, compressed GeoTIFF profile; tiled so later window reads touch few blocks."""
    profile = {
        "driver": STEP_DRIVER, "width": width, "height": height, "count": count,
        "dtype": dtype, "crs": crs, "transform": transform, "nodata": nodata,
        # zstd level 1: about as fast as no compression, and as small as deflate.
        "compress": "zstd", "zstd_level": 1,
    }
    if width >= 256 and height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def write_array(path: str | Path, array: np.ndarray, crs, transform,
                nodata: float | None = None, quiet: bool = True) -> None:
    """Write a (C, H, W) or (H, W) array as GeoTIFF (small rasters: tiles, tests).

    ``quiet`` silences rasterio's warning for plain (not georeferenced) images; worker
    threads pass False because warning filters are process-global and not thread-safe
    (their caller silences it once around the pool)."""
    bands = array[None] if array.ndim == 2 else array
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    profile = geotiff_profile(bands.shape[2], bands.shape[1], bands.shape[0],
                              str(bands.dtype), crs, transform, nodata)
    with plain_images_quiet() if quiet else nullcontext(), \
            rasterio.open(path, "w", **profile) as dst:
        dst.write(bands)


def crs_string(crs) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()
