"""The scenes `segpipe predict` finds under a local folder or an ``s3://bucket/prefix/``
(pipelines/cli/predict_folder.py): every raster file found as prepare's discovery finds
images (by suffix: components/discover_rules.py; hidden files and folders skipped), in every
subfolder, each with the path its output gets below the output folder (``sub/a.png`` ->
``sub/a.tif``). A scene's sidecar files (``.aux.xml``, ``.ovr``, world files, ...) are read
with it by GDAL and skipped without a word; any other file is left out and named in one
warning. Scenes are counted as the listing goes: past ``max_scenes`` the listing stops,
before any scene is read, as it does past ``LISTED_PER_SCENE`` times as many entries of any
kind (a prefix of millions of objects that are not scenes). S3's "folder" markers (empty
keys ending in ``/``) are not entries."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from components.raster import DataError, SettingError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from components.s3_scenes import S3Object

#: The most scenes one run predicts by default: a listing this long is read in seconds, and
#: a folder of more is usually a mistake (a drive's root, a bucket's).
MAX_SCENES = 10_000
#: The most entries (scenes, sidecars, other files) listed per scene of ``max_scenes``: room
#: for a scene's sidecars and notes, and a bound on a listing of files that are not scenes.
LISTED_PER_SCENE = 10


class SceneFolderOptions(BaseModel):
    """How ``segpipe predict`` takes a folder or prefix of scenes."""

    model_config = ConfigDict(extra="forbid")

    max_scenes: int = Field(MAX_SCENES, ge=1, description="most scenes a folder or prefix may "
                            "hold, counted from its listing before any scene is read")
    overwrite: bool = Field(False, description="predict again the scenes whose output exists "
                            "(without it they are skipped, so an interrupted run resumes)")


#: Files GDAL reads beside a scene (georeferencing, overviews, masks, statistics), compared in
#: lower case: skipped without a warning.
SIDECAR_ENDINGS = (".aux.xml", ".ovr", ".msk", ".aux", ".rrd", ".prj", ".wld", ".tfw",
                   ".tifw", ".tiffw", ".pgw", ".pngw", ".jgw", ".jpgw", ".jpegw", ".j2w",
                   ".jp2w", ".bpw", ".bmpw")
#: What a scene's output is named: its name with this suffix (always a GeoTIFF).
OUTPUT_SUFFIX = ".tif"


class ListingError(DataError):
    """The folder or prefix could not be listed (S3's refusal, an endpoint that does not
    answer): the environment's problem, not the scenes'."""


@dataclass(frozen=True)
class FolderScene:
    """A scene found: ``source`` is what predict opens (a local path, or an S3 object),
    ``relative`` its path below the folder or prefix, ``stamp`` what tells this version of it
    from another by the listing alone: its size and modification time in nanoseconds (a local
    file), or its size and ETag (an S3 object)."""

    source: Path | S3Object
    relative: PurePosixPath
    stamp: str

    @property
    def output(self) -> PurePosixPath:
        """Its output's path below the output folder."""
        return self.relative.with_suffix(OUTPUT_SUFFIX)


@dataclass(frozen=True)
class FoundScenes:
    scenes: list[FolderScene]
    left_out: list[str]  # files that are neither scenes nor sidecars, relative


def find_scenes(source: Path | str, max_scenes: int) -> FoundScenes:
    """The scenes under ``source`` (a local folder, or an ``s3://bucket/prefix/`` URI), by
    relative path. A SettingError when there are more than ``max_scenes``; a DataError when
    there is none, or two would write one output (``a.png`` and ``a.tif``); a ListingError
    when S3 cannot be listed."""
    if isinstance(source, Path):
        from components.discover_rules import RASTER_SUFFIXES

        names: Iterator[tuple[str, str | None]] = _folder_names(source)
        suffixes, what = RASTER_SUFFIXES, "a raster file"
    else:
        from components.raster import DRIVER_OF_SUFFIX

        names = _s3_names(source)
        suffixes, what = set(DRIVER_OF_SUFFIX), "a raster object (a VRT is not read from S3)"
    scenes, left_out = [], []
    for listed, (name, stamp) in enumerate(names):
        if listed == LISTED_PER_SCENE * max_scenes:
            raise SettingError(f"{source}: holds more than {listed:,} files, {LISTED_PER_SCENE} "
                               f"per scene of {{setting}} {max_scenes:,}, and the listing "
                               f"stopped there; predict a part of it, or raise {{setting}}",
                               "max_scenes")
        relative = PurePosixPath(name)
        if name.lower().endswith(SIDECAR_ENDINGS):
            continue
        if relative.suffix.lower() not in suffixes or not _safe(relative):
            left_out.append(name)
            continue
        if len(scenes) == max_scenes:
            raise SettingError(f"{source}: holds more than {max_scenes:,} scenes, the most "
                               f"one run predicts ({{setting}}); predict a part of it, or "
                               f"raise {{setting}}", "max_scenes")
        scenes.append(_scene(source, name, stamp))
    if not scenes:
        kinds = ", ".join(sorted(suffixes))
        raise DataError(f"{source}: no scenes ({what}: {kinds}) in it or its subfolders")
    scenes.sort(key=lambda scene: scene.relative)
    _check_outputs_differ(source, scenes)
    return FoundScenes(scenes, sorted(left_out))


def _safe(relative: PurePosixPath) -> bool:
    """A path that stays below the output folder (an S3 key may hold ``..``), and is not
    hidden (as discovery skips hidden files: a temporary file of a write in progress)."""
    from components.discover_rules import never_read

    return (not relative.is_absolute() and ".." not in relative.parts
            and not never_read(relative))


def _folder_names(root: Path) -> Iterator[tuple[str, str | None]]:
    """Relative names; a file's stamp is read only when it is a scene (``_scene``)."""
    from components.discover_rules import visible_files

    for path in visible_files(root):
        yield path.relative_to(root).as_posix(), None


def _s3_names(uri: str) -> Iterator[tuple[str, str | None]]:
    from components.source_fingerprint import s3_entries

    try:
        yield from s3_entries(uri)  # (name, "size etag")
    except DataError as err:
        raise ListingError(str(err)) from None


def _scene(source: Path | str, name: str, stamp: str | None) -> FolderScene:
    if isinstance(source, Path):
        status = (source / name).stat()
        return FolderScene(source / name, PurePosixPath(name),
                           f"{status.st_size} {status.st_mtime_ns}")
    from components.s3_scenes import S3Object
    from components.sources import split_s3_uri

    bucket, prefix = split_s3_uri(source)
    return FolderScene(S3Object(bucket, prefix + name), PurePosixPath(name), stamp or "")


def _check_outputs_differ(source: Path | str, scenes: list[FolderScene]) -> None:
    """Two scenes never write one output, nor one a file where the other needs a folder
    (``x.tif`` and ``x.tif/y.tif``), compared case-folded: on macOS's and Windows' file
    systems ``A.tif`` and ``a.tif`` are one file."""
    seen: dict[str, FolderScene] = {}
    for scene in scenes:
        if (other := seen.setdefault(str(scene.output).casefold(), scene)) is not scene:
            raise DataError(f"{source}: {other.relative} and {scene.relative} would both be "
                            f"predicted into {scene.output}; move or rename one")
    for scene in scenes:
        for folder in scene.output.parents:
            if (other := seen.get(str(folder).casefold())) is not None:
                raise DataError(f"{source}: {other.relative} would be predicted into "
                                f"{other.output}, a folder of {scene.relative}'s output "
                                f"{scene.output}; move or rename one")
