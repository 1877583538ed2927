"""Where the artifacts of a prepared dataset and of a trained model live, and the handle
that reads them (``PreparedDataset``): the layout ``components.artifacts`` describes, plus
tile file I/O and content digests.

In a Kubeflow run the split and stats are separate artifacts beside the tile step's
folder; ``PreparedDataset`` takes their paths."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel

from components.artifacts import ClassMap, NormStats, SplitManifest, SplitName, TileManifest

_M = TypeVar("_M", bound=BaseModel)


class DatasetPaths:
    """Where each artifact of a prepared dataset lives under one root folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    classes = property(lambda self: self.root / "classes.json")
    scenes_dir = property(lambda self: self.root / "scenes")
    scene_index = property(lambda self: self.root / "scenes.json")
    tiles_dir = property(lambda self: self.root / "tiles")
    tiles_manifest = property(lambda self: self.root / "tiles.json")
    split = property(lambda self: self.root / "split.json")
    stats = property(lambda self: self.root / "stats.json")


class PreparedDataset(DatasetPaths):
    """What training, tuning, evaluation and registration read: the tiles with their
    manifest and classes, the split and the normalization statistics.

    One folder from ``segpipe prepare``, or the tile step's folder with the split and stats
    that Kubeflow keeps as separate artifacts (``split`` and ``stats`` name those files), and
    the ingest step's ``scenes`` folder (the native-resolution scenes that scene-level
    evaluation predicts). Manifests are loaded once, on first use."""

    def __init__(self, root: str | Path, split: str | Path | None = None,
                 stats: str | Path | None = None, scenes: str | Path | None = None) -> None:
        super().__init__(root)
        self._split = Path(split) if split is not None else self.root / "split.json"
        self._stats = Path(stats) if stats is not None else self.root / "stats.json"
        self._scenes = Path(scenes) if scenes is not None else self.root / "scenes"
        self._loaded: dict[str, BaseModel] = {}

    split = property(lambda self: self._split)
    stats = property(lambda self: self._stats)
    scenes_dir = property(lambda self: self._scenes)

    def _load(self, model: type[_M], path: Path) -> _M:
        if path not in self._loaded:
            self._loaded[path] = model.load(path)
        return self._loaded[path]  # type: ignore[return-value]

    @property
    def class_map(self) -> ClassMap:
        return self._load(ClassMap, self.classes)

    @property
    def tile_manifest(self) -> TileManifest:
        return self._load(TileManifest, self.tiles_manifest)

    @property
    def split_manifest(self) -> SplitManifest:
        return self._load(SplitManifest, self.split)

    @property
    def norm_stats(self) -> NormStats:
        return self._load(NormStats, self.stats)

    def tile_ids(self, split: SplitName) -> list[str]:
        return list(self.split_manifest.splits.get(split, []))

    def digest(self) -> str:
        """Digest of the tiles: their manifests, which name every tile, plus tile bytes."""
        if "digest" not in self._loaded:
            files = [self.classes, self.tiles_manifest]
            files += [p for t in self.tile_manifest.tiles
                      for p in tile_paths(self.tiles_dir, t.id)]
            self._loaded["digest"] = content_digest(files)  # type: ignore[assignment]
        return self._loaded["digest"]  # type: ignore[return-value]

    def split_digest(self, split: SplitName = "test") -> str:
        """Names an exact evaluation set: the tiles' content plus the split's tile ids."""
        h = hashlib.sha256(self.digest().encode())
        h.update(split.encode())
        h.update("\n".join(sorted(self.tile_ids(split))).encode())
        return h.hexdigest()


class ModelPaths:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    keras_model = property(lambda self: self.root / "model.keras")
    info = property(lambda self: self.root / "model.json")


def tile_paths(tiles_dir: str | Path, tile_id: str) -> tuple[Path, Path]:
    tiles_dir = Path(tiles_dir)
    return tiles_dir / f"{tile_id}_image.tif", tiles_dir / f"{tile_id}_mask.tif"


def read_tile(tiles_dir: str | Path, tile_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (image HxWxC in its stored dtype, mask HxW uint8)."""
    import rasterio

    from components.raster import STEP_DRIVER

    image_path, mask_path = tile_paths(tiles_dir, tile_id)
    with rasterio.open(image_path, driver=STEP_DRIVER) as src:
        image = np.moveaxis(src.read(), 0, -1)
    with rasterio.open(mask_path, driver=STEP_DRIVER) as src:
        mask = src.read(1)
    return image, mask


def content_digest(paths: list[Path], chunk: int = 1 << 20) -> str:
    """sha256 over the bytes of ``paths`` in the given order (names included)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()


