"""Scenes the Predict page accepts: uploads saved to a temporary file, or files of the data
folder; each checked (decodable, band count, pixel count) from its header before any pixel
is read."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.errors import RasterioIOError

from pipelines.ui.settings import UiError
from serving.bands import band_dtype
from serving.decode import UPLOAD_DRIVERS, undecodable
from serving.encode import is_georeferenced
from serving.image_bands import band_count_problem, image_bands
from serving.quiet import plain_images_quiet
from serving.resolution import pixel_size
from serving.wording import counted

#: Scene file suffixes -> the one GDAL driver each is opened with (serving.decode's
#: UPLOAD_DRIVERS): GDAL tells formats by their bytes, and would open a VRT named .tif.
SCENE_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff", ".png": "PNG", ".jpg": "JPEG",
                 ".jpeg": "JPEG"}
SCENE_SUFFIXES = tuple(SCENE_DRIVERS)
#: Files listed from the data folder; a folder holding more is cut at this many.
MAX_LISTED = 2000


@dataclass(frozen=True)
class SceneInfo:
    name: str
    width: int
    height: int
    bands: int
    dtype: str
    crs: str | None
    georeferenced: bool
    metres_per_pixel: float | None = None  # None: no projected CRS (serving.resolution)
    alpha: int | None = None  # the band read as transparency (serving.image_bands), if any

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def describe(self) -> str:
        where = f", {self.crs}" if self.crs else (", georeferenced" if self.georeferenced
                                                    else ", not georeferenced")
        alpha = f" and band {self.alpha} read as transparency" if self.alpha else ""
        return (f"{self.width}×{self.height} px, {counted(self.bands, 'band')}{alpha}, "
                f"{self.dtype}{where}")


def inspect_scene(path: Path, name: str, bands: int, max_pixels: int) -> SceneInfo:
    """Open ``path`` lazily as a GeoTIFF, PNG or JPEG (never a VRT, which would read other
    files of the server) and check it against the model (``bands``) and the app's pixel
    limit; UiError naming ``name`` and the problem otherwise."""
    with plain_images_quiet():
        try:
            driver = SCENE_DRIVERS.get(path.suffix.lower())
            if driver not in UPLOAD_DRIVERS:
                raise RasterioIOError(f"{path.suffix}: not a scene suffix")
            src = rasterio.open(path, driver=driver)
        except RasterioIOError:
            size = path.stat().st_size if path.exists() else 0
            raise UiError(undecodable(_head(path), name, size)) from None
    with src:
        problem = band_count_problem(src, bands)
        read = image_bands(src, bands)
        info = SceneInfo(name=name, width=src.width, height=src.height,
                         bands=len(read.indexes), alpha=read.alpha[0] if read.alpha else None,
                         dtype=band_dtype(src).name, crs=src.crs.to_string() if src.crs else None,
                         georeferenced=is_georeferenced(src),
                         metres_per_pixel=pixel_size(src))
    if info.pixels > max_pixels:
        raise UiError(f"{name}: too many pixels: {info.width}×{info.height} = {info.pixels}, "
                      f"the limit is {max_pixels}")
    if problem:
        raise UiError(f"{name}: wrong band count: {problem}, the model expects {bands}")
    return info


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(64)
    except OSError:
        return b""


def save_upload(data: bytes, name: str, folder: Path) -> Path:
    """Write uploaded bytes to ``folder`` under a fixed name with the upload's (allowed)
    suffix: the user's file name never becomes a path."""
    suffix = Path(name).suffix.lower()
    if suffix not in SCENE_SUFFIXES:
        raise UiError(f"{name}: not a GeoTIFF, PNG or JPEG file name "
                      f"(expected one of {', '.join(SCENE_SUFFIXES)})")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"upload{suffix}"
    path.write_bytes(data)
    return path


def label_files(root: Path) -> set[Path]:
    """The label masks of ``root``'s image/label pairs, as the ingest step would pair them
    with its default options (``labels/x.tif`` beside ``images/x.tif``, ``x_mask.tif``
    beside ``x.tif``, ...); none where the layout does not tell images from labels."""
    from components.ingest import find_pairs
    from components.ingest_options import IngestOptions
    from components.raster import DataError

    try:
        pairs = find_pairs(root, IngestOptions()).pairs
    except (DataError, OSError):
        return set()
    return {pair.label for pair in pairs if pair.kind == "raster" and pair.label != pair.image}


def list_scenes(data_dir: Path, limit: int = MAX_LISTED) -> list[str]:
    """Scene files under ``data_dir`` (relative POSIX paths, in walk order with sorted
    names), at most ``limit``, without the label masks of a dataset laid out as image/label
    pairs; linked folders are not followed, linked files leading outside the folder are
    left out."""
    root = data_dir.resolve()
    labels = label_files(root)
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for file in sorted(files):
            path = Path(folder) / file
            if (path.suffix.lower() not in SCENE_SUFFIXES or not path.is_file()
                    or path in labels):
                continue
            if not path.resolve().is_relative_to(root):
                continue
            found.append(path.relative_to(root).as_posix())
            if len(found) >= limit:
                return found
    return found


def scene_path(data_dir: Path, relative: str) -> Path:
    """The file a listed name stands for, refusing anything outside ``data_dir``."""
    root = data_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise UiError(f"{relative}: not a scene in the data folder {data_dir}")
    return path
