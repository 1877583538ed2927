"""The scene `segpipe predict` reads: a local file, checked as a path argument is checked, or an
``s3://bucket/key`` object, checked before the model loads (components/s3_scenes.py) and
read through GDAL's /vsis3/ window by window; or a folder or ``s3://bucket/prefix/`` of
them (pipelines/cli/predict_folder.py)."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import typer

from pipelines.cli.errors import fail

if TYPE_CHECKING:
    from components.s3_scenes import S3Object


@dataclass(frozen=True)
class Scene:
    """``path`` is what rasterio opens and what messages name: a local path, or an S3 object
    (named by its URI, opened through /vsis3/). ``driver`` is the one GDAL driver an S3
    object opens with, its check's (None: any, for a local file)."""

    path: Path | S3Object
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

    def read_failure(self, error: Exception) -> Exception:
        """The exception that ends the command when the scene was refused or could not be
        read (``error``, a SceneError naming it: exit 2). S3 is asked again about an S3 scene
        first: GDAL reports a read S3 refused (credentials expired mid-scene, access revoked)
        as corrupt data, and that is an access error (exit 1), or a missing object (2)."""
        problem = self.read_problem(error)
        if problem is not error:
            return _s3_failure(problem)
        return typer.BadParameter(str(error), param_hint="INPUT")

    def read_problem(self, error: Exception) -> Exception:
        """What stopped a read of the scene: ``error``, or, for an S3 scene S3 refuses to read
        now, S3's refusal (read_failure)."""
        if self.local is None:
            from components.s3_scenes import s3_read_problem

            if problem := s3_read_problem(self.path):
                return problem
        return error


def scene_argument(value: str) -> Path | str:
    """The scene argument: an ``s3://`` URI as it is (``check_scene_source`` checks it, or
    the folder step lists a prefix), a local scene or folder of scenes checked as a path
    option's ``exists=True`` checks one, in its words (exit 2)."""
    from components.sources import is_s3_uri

    if is_s3_uri(value):
        return value
    path = Path(value)
    if not path.exists():
        raise typer.BadParameter(f"file {value!r} does not exist.")
    if not os.access(path, os.R_OK):
        raise typer.BadParameter(f"file {value!r} is not readable.")
    return path


def is_scene_folder(value: Path | str) -> bool:
    """A local folder, or an ``s3://bucket/`` or ``s3://bucket/prefix/`` URI: scenes to find
    (components/scene_folders.py), rather than one scene."""
    from components.raster import DataError
    from components.sources import split_s3_uri

    if isinstance(value, Path):
        return value.is_dir()
    try:
        _, key = split_s3_uri(value)
    except DataError:  # check_scene_source says what is wrong with it
        return False
    return not key or key.endswith("/")


def check_scene_source(value: Path | str) -> Scene:
    """``value`` as a Scene; an S3 object is asked for before any model loads: one line
    naming the URI when it cannot be read (exit 1: credentials or endpoint) or is not a
    scene (exit 2: missing, a prefix, a VRT, not a raster of a format a source may hold)."""
    if isinstance(value, Path):
        return Scene(value)
    from components.raster import DataError
    from components.s3_scenes import check_s3_scene, s3_object

    try:
        scene = s3_object(value)
        return Scene(scene, check_s3_scene(scene))
    except DataError as exc:
        raise _s3_failure(exc) from None


def _s3_failure(error: Exception) -> typer.Exit:
    """An S3 scene's error as the command's end: exit 1 for what the environment must fix
    (credentials, endpoint), 2 for the scene (missing, not a raster)."""
    from components.s3_scenes import S3AccessError

    return fail(str(error), 1 if isinstance(error, S3AccessError) else 2)
