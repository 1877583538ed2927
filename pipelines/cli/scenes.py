"""The scene `segpipe predict` reads: a local file, checked as a path argument is checked, or an
``s3://bucket/key`` object, checked before the model loads (components/s3_scenes.py) and
read through GDAL's /vsis3/ window by window."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import typer

from pipelines.cli.errors import fail


@dataclass(frozen=True)
class Scene:
    """``path`` is what rasterio opens and what messages name: a local path, or the S3 URI
    itself (rasterio reads ``s3://`` through /vsis3/). ``driver`` is the one GDAL driver an
    S3 object opens with, its check's (None: any, for a local file)."""

    path: Path | str
    driver: str | None = None

    @property
    def local(self) -> Path | None:
        return self.path if isinstance(self.path, Path) else None

    @property
    def name(self) -> str:
        return PurePosixPath(str(self.path)).name

    def env(self) -> AbstractContextManager:
        """The GDAL settings the scene's reads run under: S3's credentials and endpoint."""
        if self.local is not None:
            return nullcontext()
        from components.s3_scenes import s3_gdal_env

        return s3_gdal_env()


def scene_argument(value: str) -> Path | str:
    """The scene argument: an ``s3://`` URI as it is (``check_scene_source`` checks it), a
    local scene checked as a path option's ``exists=True, dir_okay=False`` checks one, in
    its words (exit 2)."""
    if value.startswith("s3://"):
        return value
    path = Path(value)
    if not path.exists():
        raise typer.BadParameter(f"file {value!r} does not exist.")
    if path.is_dir():
        raise typer.BadParameter(f"file {value!r} is a directory.")
    if not os.access(path, os.R_OK):
        raise typer.BadParameter(f"file {value!r} is not readable.")
    return path


def check_scene_source(value: Path | str) -> Scene:
    """``value`` as a Scene; an S3 object is asked for before any model loads: one line
    naming the URI when it cannot be read (exit 1: credentials or endpoint) or is not a
    scene (exit 2: missing, a prefix, a VRT, not a raster of a format a source may hold)."""
    if isinstance(value, Path):
        return Scene(value)
    from components.raster import DataError
    from components.s3_scenes import S3AccessError, check_s3_scene

    try:
        return Scene(value, check_s3_scene(value))
    except S3AccessError as exc:
        raise fail(str(exc), 1) from None
    except DataError as exc:
        raise fail(str(exc), 2) from None
