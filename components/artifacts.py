"""Typed contracts for what the pipeline steps hand each other.

A prepared dataset is one folder (``DatasetPaths``)::

    classes.json   ClassMap: contiguous class ids 0..K-1, names, colours, ignore index
    scenes/        ingest output: <scene>_image.tif (its bands' common dtype, floats when NaN
                   marks transparent pixels or per-band nodata; CRS kept)
                   and <scene>_mask.tif (uint8 class ids; ignore_index where the label is
                   ignored or the image is nodata/NaN)
    scenes.json    SceneIndex: where each scene came from in the source
    tiles/         <tile_id>_image.tif / <tile_id>_mask.tif GeoTIFF patches, each with its
                   own transform and the scene's CRS
    tiles.json     TileManifest
    split.json     SplitManifest (tile ids per split)
    stats.json     NormStats fitted on the train split only

Where each file lives, ``PreparedDataset`` (the handle the training side takes) and
``ModelPaths`` (a trained model's folder: ``model.keras`` + ``model.json``) are in
``components.dataset_paths``.

Every JSON file here is written through ``components.atomic`` and read back through these
models, so a malformed artifact fails loudly with the file and field named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.atomic import write_json

SplitName = Literal["train", "val", "test"]
SPLIT_NAMES: tuple[SplitName, ...] = ("train", "val", "test")

_M = TypeVar("_M", bound=BaseModel)


class ArtifactError(ValueError):
    """An artifact file is missing or malformed; the message names the file."""


class _Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def load(cls: type[_M], path: str | Path) -> _M:
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError as err:
            raise ArtifactError(f"{path}: missing ({cls.__name__} expected)") from err
        except ValidationError as err:
            raise ArtifactError(f"{path}: not a valid {cls.__name__}: {err}") from err

    def save(self, path: str | Path) -> None:
        write_json(path, self.model_dump(mode="json"))


class ClassInfo(BaseModel):
    id: int = Field(ge=0, le=254)
    name: str
    color: str = Field(pattern=r"^#[0-9A-Fa-f]{6}$", description="#RRGGBB")


class ClassMap(_Artifact):
    classes: list[ClassInfo]
    ignore_index: int = Field(default=255, ge=0, le=255)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def palette(self) -> np.ndarray:
        """(K, 3) uint8 RGB colours, row i for class id i."""
        return np.array([[int(c.color[i:i + 2], 16) for i in (1, 3, 5)] for c in self.classes],
                        dtype=np.uint8)


class SceneSource(BaseModel):
    name: str
    source: str = Field(description="the image's path relative to the data root "
                        "(SceneIndex.data_root)")
    label: str | None = Field(default=None, description="the label's path, likewise")
    given_split: SplitName | None = Field(
        default=None, description="the split the dataset itself gives this scene (list "
        "files or train/val/test folders)")
    source_dtype: str | None = Field(
        default=None, description="the image's pixel type as prediction reads it (its "
        "bands' common type), also when the scene was written as floats only to carry NaN "
        "(transparent pixels, per-band nodata); None in scenes.json of older segpipe")


class SceneIndex(_Artifact):
    """Written by ingest beside scenes/: the tile step carries it into tiles.json."""
    source: str = Field(description="the source as given (folder, archive or s3:// prefix)")
    data_root: str = Field(".", description="the folder inside the source that scenes' "
                           "paths are relative to: the source's one folder when it holds "
                           "nothing else (an archive of a folder), else '.'")
    scenes: list[SceneSource]
    label_kind: str | None = Field(None, description="the labels' kind (components/survey.py "
                                   "KIND_WORDS: ids, colors, labelme, vector, vector_ids), "
                                   "for advice on the options that apply to them")
    warnings: list[str] = []
    given_split_note: str | None = Field(
        None, description="where split lists were found but leave scenes without a given "
        "split: what they name (for the 'given' strategy's error)")


class SceneInfo(BaseModel):
    name: str
    width: int
    height: int
    crs: str | None = Field(description="WKT or EPSG string; None for plain images")
    transform: tuple[float, float, float, float, float, float] = Field(
        description="affine a, b, c, d, e, f (rasterio order)")
    source: str | None = Field(default=None, description="the image's path relative to the "
                               "data root (for group and given splits)")
    given_split: SplitName | None = Field(default=None, description="the dataset's own split")
    scale: float = Field(default=1.0, description="resampling factor applied to this scene")
    neighbours: list[str] = Field(
        default=[], description="scenes (without CRS) whose edge continues this scene's or "
        "whose content overlaps it: likely crops of one original image")


class TileRecord(BaseModel):
    id: str
    scene: str
    window: tuple[int, int, int, int] = Field(
        description="col_off, row_off, width, height in the (resampled) scene grid; may "
                    "extend past the scene edge, where the tile is padded")
    transform: tuple[float, float, float, float, float, float]
    valid_fraction: float = Field(ge=0, le=1, description="labelled (not ignored, not "
                                  "nodata) share of the tile's in-scene area")
    class_counts: dict[int, int] = Field(description="class id -> pixel count (ignored excluded)")


class TileManifest(_Artifact):
    patch_size: int
    stride: int
    scale: float = Field(default=1.0, description="resampling factor (1.0 with target_gsd; "
                         "each scene's own factor is in its SceneInfo)")
    target_gsd: float | None = Field(default=None, description="metres per pixel every "
                                     "scene was resampled to, when set")
    gsd: float | None = Field(
        default=None, gt=0, description="metres per pixel of the tiles, the resolution the "
        "served model resamples inputs in a projected CRS to: target_gsd when set, else the "
        "scenes' pixel size divided by their resampling factor when every scene is "
        "georeferenced in a projected CRS and those sizes agree (components/tile.py "
        "tiles_gsd); None otherwise (scenes of different pixel sizes, plain images, degrees)")
    bands: int
    dtype: str = Field(description="the scenes' and tiles' common pixel type")
    source_dtype: str | None = Field(
        default=None, description="the source images' common pixel type (SceneSource."
        "source_dtype), what the model is sent: uint8 for RGBA PNGs whose transparent pixels "
        "made scenes and tiles float32; None in tiles.json of older segpipe")
    nodata: float | None = None
    scenes: list[SceneInfo]
    tiles: list[TileRecord]
    given_split_note: str | None = Field(default=None, description="carried from "
                                         "SceneIndex.given_split_note")
    duplicates_dropped: int = Field(default=0, ge=0, description="tiles of overlapping "
                                    "georeferenced scenes dropped as identical to a kept one "
                                    "(same footprint, pixels and labels; "
                                    "components/tile_duplicates.py)")

    @model_validator(mode="before")
    @classmethod
    def _gsd_of_older_manifests(cls, data: Any) -> Any:
        # Written before gsd was recorded: target_gsd was the only resolution it knew.
        if isinstance(data, dict) and "gsd" not in data and data.get("target_gsd"):
            data = {**data, "gsd": data["target_gsd"]}
        return data

    @property
    def model_dtype(self) -> str:
        """The pixel type the model trained on these tiles records as its input's
        (``ServingConfig.input_dtype``): the source images', else the tiles' own."""
        return self.source_dtype or self.dtype

    def scene(self, name: str) -> SceneInfo:
        for s in self.scenes:
            if s.name == name:
                return s
        raise KeyError(name)


class SplitManifest(_Artifact):
    strategy: Literal["random", "scene", "block", "group", "given"]
    seed: int
    ratios: tuple[float, float, float]
    block_size: int | None = None
    group_by: str | None = None
    splits: dict[SplitName, list[str]] = Field(description="split -> tile ids")
    warnings: list[str] = []


class BandStats(BaseModel):
    mean: float
    std: float
    min: float
    max: float
    percentiles: dict[str, float] = Field(description='e.g. {"1": .., "2": .., "98": .., "99": ..}')


class NormStats(_Artifact):
    bands: list[BandStats]
    nodata: float | None = None
    pixel_count: int
    fitted_on: SplitName = "train"
    tile_count: int

    @property
    def mean(self) -> list[float]:
        return [b.mean for b in self.bands]

    @property
    def std(self) -> list[float]:
        return [b.std for b in self.bands]


class TrainedModelInfo(_Artifact):
    architecture: str
    params: dict = Field(description="build_model keyword arguments")
    num_classes: int
    in_channels: int
    patch_size: int
    best_epoch: int | None = None
    best_val_miou: float | None = None
    mlflow_run_id: str | None = None
