"""The ground a model has seen, recorded when it is registered, and how much of the ground
``segpipe evaluate`` scores lies on it: a score on seen ground is not a held-out score.

Seen ground is the train split's and the validation split's: validation chose the epoch
(early stopping, the kept checkpoint) and the trial (tuning), so a score on it is not held
out either. The test split is not seen.

The record (``training_ground.json``, an artifact of the run that registered the model)
holds, per CRS, each seen tile's footprint (min x, min y, max x, max y in that CRS, clipped
to its scene: padding past a scene's edge holds no ground); for tiles of scenes without a
CRS, which have no place on the ground, the digest of their pixels and labels
(components/same_ground.py ``content_digest``): only an identical tile, tiled the same way,
is found. Scored tiles in another CRS are compared by the bounding box of their outlines
reprojected into the record's CRS (components/split_ground.py, the split's own footprints: a
slight overestimate near the edges); tiles that CRS has no place for (outside where it is
defined, as for a scene tagged with the wrong CRS) are not on its ground.

The share is of the scored tiles' pixels inside their scenes: how much of the tile-level
figure, and about how much of the scene-level one, is on seen ground. Comparing is bounded:
scored against seen footprints in chunks of ``CHUNK_PAIRS``, the exact union only for the
few seen tiles a scored tile overlaps."""

from __future__ import annotations

import warnings

import numpy as np
from pydantic import BaseModel, Field

from components.artifacts import SceneInfo, SplitName, TileManifest, TileRecord
from components.dataset_paths import PreparedDataset, read_tile
from components.same_ground import content_digest
from components.split_ground import in_scene_size, reproject_points, tile_outlines

#: The artifact's name on the registering run.
ARTIFACT = "training_ground.json"
#: An evaluation run's record of it (components/evaluate.py save_evaluation).
SEEN_GROUND_METRIC = "seen_ground_share"
SEEN_GROUND_TAG = "segpipe.seen_ground"
SEEN_SPLITS: tuple[SplitName, ...] = ("train", "val")
SPLIT_WORDS = {"train": "train", "val": "validation"}
#: Candidate pairs compared at once (scored x seen footprints): ~50 MB of temporaries.
CHUNK_PAIRS = 1 << 22
#: Overlaps thinner than this fraction of a scored tile's side are touching edges.
EDGE_TOL = 1e-6


class SeenFootprints(BaseModel):
    crs: str
    split: SplitName
    bounds: list[tuple[float, float, float, float]] = Field(
        description="min x, min y, max x, max y of each tile in crs, clipped to its scene")


class TrainingGround(BaseModel):
    """What a model was trained and selected on, by place (and by content without a CRS)."""

    dataset: str = Field(description="the training dataset's folder or source, as logged")
    dataset_digest: str
    footprints: list[SeenFootprints]
    digests: dict[SplitName, list[str]] = Field(
        default={}, description="split -> content digests of its tiles of scenes without CRS")


class SeenGround(BaseModel):
    """How much of an evaluation's scored tiles lie on the model's seen ground."""

    scored_tiles: int
    seen_tiles: int = Field(description="scored tiles overlapping seen ground at all")
    seen_tiles_by_split: dict[str, int] = Field(
        description="of seen_tiles, by the split they overlap first: train, then val")
    seen_ground_share: float = Field(ge=0, le=1, description="share of the scored tiles' "
                                     "pixels (inside their scenes) on seen ground")
    training_dataset: str
    training_dataset_digest: str

    def message(self) -> str:
        splits = " and ".join(f"{SPLIT_WORDS[s]} split" for s in SEEN_SPLITS
                              if self.seen_tiles_by_split.get(s))
        by_split = ", ".join(f"{SPLIT_WORDS[s]} {n}" for s in SEEN_SPLITS
                             if (n := self.seen_tiles_by_split.get(s)))
        return (f"{self.seen_tiles} of {self.scored_tiles} scored tiles "
                f"({self.seen_ground_share:.0%} of their pixels) lie on the model's "
                f"training ground ({splits} of {self.training_dataset}: {by_split}): this "
                f"figure is not a held-out score")


class SeenGroundWarning(UserWarning):
    """Part of the scored ground is ground the model was trained or selected on."""


def _split_tiles(dataset: PreparedDataset, split: SplitName
                 ) -> tuple[list[tuple[SceneInfo, TileRecord]], int]:
    """``split``'s tiles with their scenes, and the dataset's patch size."""
    manifest: TileManifest = dataset.tile_manifest
    ids = set(dataset.tile_ids(split))
    scenes = {scene.name: scene for scene in manifest.scenes}
    return ([(scenes[tile.scene], tile) for tile in manifest.tiles if tile.id in ids],
            manifest.patch_size)


def _outlines(tiles: list[tuple[SceneInfo, TileRecord]], patch: int) -> np.ndarray:
    """(tiles, points, 2) map points around each tile's part inside its scene."""
    return tile_outlines([tile for _, tile in tiles],
                         [in_scene_size(tile, patch, scene) for scene, tile in tiles])


def _boxes(outlines: np.ndarray) -> np.ndarray:
    """(tiles, 4) min x, min y, max x, max y of each outline; NaN for one with no place (the
    comparisons in _candidates are False for it: not on seen ground)."""
    boxes = np.concatenate([outlines.min(axis=1), outlines.max(axis=1)], axis=1)
    boxes[~np.isfinite(boxes).all(axis=1)] = np.nan
    return boxes


def _digest(dataset: PreparedDataset, tile_id: str) -> str:
    return content_digest(*read_tile(dataset.tiles_dir, tile_id))[:32]


def training_ground(dataset: PreparedDataset, name: str) -> TrainingGround:
    """The seen ground of a model trained on ``dataset`` (``name``: how to call it)."""
    by_crs: dict[tuple[str, SplitName], list] = {}
    digests: dict[SplitName, list[str]] = {}
    for split in SEEN_SPLITS:
        tiles, patch = _split_tiles(dataset, split)
        placed = [(scene, tile) for scene, tile in tiles if scene.crs]
        for (scene, _), box in zip(placed, _boxes(_outlines(placed, patch)) if placed else (),
                                   strict=True):
            by_crs.setdefault((scene.crs, split), []).append(tuple(float(v) for v in box))
        for scene, tile in tiles:
            if not scene.crs:
                digests.setdefault(split, []).append(_digest(dataset, tile.id))
    return TrainingGround(dataset=name, dataset_digest=dataset.digest(),
                          footprints=[SeenFootprints(crs=crs, split=split, bounds=bounds)
                                      for (crs, split), bounds in by_crs.items()],
                          digests=digests)


def log_training_ground(dataset: PreparedDataset, name: str) -> None:
    """Record the seen ground on the active MLflow run (the run that registers the model)."""
    import mlflow

    mlflow.log_dict(training_ground(dataset, name).model_dump(mode="json"), ARTIFACT)


def load_training_ground(run_id: str | None) -> TrainingGround | None:
    """The record on the run that registered a model; None for a model registered by older
    segpipe (or logged outside the pipeline), which recorded none."""
    if not run_id:
        return None
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        found = mlflow.artifacts.load_dict(f"runs:/{run_id}/{ARTIFACT}")
    except (MlflowException, OSError):
        return None
    return TrainingGround.model_validate(found)


def _candidates(scored: np.ndarray, seen: np.ndarray) -> list[np.ndarray]:
    """For each scored box, the indices of the seen boxes it overlaps with some area."""
    tol = EDGE_TOL * np.minimum(scored[:, 2] - scored[:, 0], scored[:, 3] - scored[:, 1])
    rows = max(1, CHUNK_PAIRS // max(1, len(seen)))
    found: list[np.ndarray] = []
    for start in range(0, len(scored), rows):
        s, t = scored[start:start + rows, None], tol[start:start + rows, None]
        hit = ((np.minimum(s[..., 2], seen[:, 2]) - np.maximum(s[..., 0], seen[:, 0]) > t)
               & (np.minimum(s[..., 3], seen[:, 3]) - np.maximum(s[..., 1], seen[:, 1]) > t))
        found += [np.flatnonzero(row) for row in hit]
    return found


def _covered(box: np.ndarray, others: np.ndarray) -> float:
    """The share of ``box`` inside the union of ``others`` (a few boxes that overlap it):
    exact, on the grid of their edges."""
    xs = np.unique(np.clip(np.concatenate([box[[0, 2]], others[:, 0], others[:, 2]]),
                           box[0], box[2]))
    ys = np.unique(np.clip(np.concatenate([box[[1, 3]], others[:, 1], others[:, 3]]),
                           box[1], box[3]))
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside = ((others[:, 0, None, None] <= cx[None, :, None])
              & (cx[None, :, None] < others[:, 2, None, None])
              & (others[:, 1, None, None] <= cy[None, None, :])
              & (cy[None, None, :] < others[:, 3, None, None])).any(0)
    area = np.diff(xs)[:, None] * np.diff(ys)[None, :]
    total = (box[2] - box[0]) * (box[3] - box[1])
    return float((area * inside).sum() / total) if total > 0 else 0.0


def _by_crs(ground: TrainingGround) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CRS -> (seen boxes (N, 4), whether each is the train split's)."""
    out: dict[str, tuple[list, list]] = {}
    for part in ground.footprints:
        boxes, train = out.setdefault(part.crs, ([], []))
        boxes.append(np.asarray(part.bounds, float).reshape(-1, 4))
        train.append(np.full(len(part.bounds), part.split == "train"))
    return {crs: (np.concatenate(b), np.concatenate(t)) for crs, (b, t) in out.items()}


def _pixels(scene: SceneInfo, tile: TileRecord) -> float:
    """The tile's pixels inside its scene: its weight, whatever the CRS's units."""
    col, row, width, height = tile.window
    return float(max(0, min(col + width, scene.width) - max(col, 0))
                 * max(0, min(row + height, scene.height) - max(row, 0)))


def seen_ground(ground: TrainingGround, dataset: PreparedDataset,
                split: SplitName) -> SeenGround:
    """How much of ``split``'s tiles of ``dataset`` lie on ``ground``."""
    tiles, patch = _split_tiles(dataset, split)
    weights = np.array([_pixels(scene, tile) for scene, tile in tiles])
    covered = np.zeros(len(tiles))
    on_train = np.zeros(len(tiles), bool)
    seen = _by_crs(ground)
    for crs in {scene.crs for scene, _ in tiles if scene.crs}:
        index = np.array([i for i, (scene, _) in enumerate(tiles) if scene.crs == crs])
        outlines = _outlines([tiles[i] for i in index], patch)
        for there, (rects, train) in seen.items():
            local = _boxes(outlines if there == crs
                           else reproject_points(there, crs, outlines))
            for k, hits in enumerate(_candidates(local, rects)):
                if len(hits):
                    i = index[k]
                    covered[i] = max(covered[i], _covered(local[k], rects[hits]))
                    on_train[i] |= bool(train[hits].any())
    # Train's last: a tile in both counts as train's.
    digests = {d: s for s in reversed(SEEN_SPLITS) for d in ground.digests.get(s, [])}
    if digests:
        for i, (scene, tile) in enumerate(tiles):
            if not scene.crs and (found := digests.get(_digest(dataset, tile.id))):
                covered[i], on_train[i] = 1.0, found == "train"
    hit = covered > 0
    total = weights.sum()
    return SeenGround(scored_tiles=len(tiles), seen_tiles=int(hit.sum()),
                      seen_tiles_by_split={"train": int((hit & on_train).sum()),
                                           "val": int((hit & ~on_train).sum())},
                      seen_ground_share=float((weights * covered).sum() / total) if total
                      else 0.0,
                      training_dataset=ground.dataset,
                      training_dataset_digest=ground.dataset_digest)


def check_seen_ground(run_id: str | None, dataset: PreparedDataset,
                      split: SplitName) -> SeenGround | None:
    """How much of ``split`` lies on the ground of the model logged by ``run_id``, with a
    warning when any does; None for a model whose registration recorded no such ground."""
    ground = load_training_ground(run_id)
    if ground is None:
        return None
    seen = seen_ground(ground, dataset, split)
    if seen.seen_tiles:
        warnings.warn(seen.message(), SeenGroundWarning, stacklevel=2)
    return seen
