"""Scene-level evaluation: what a user gets when they predict a whole scene.

Each scene with test tiles is predicted whole, at its native (ingested) resolution, through
serving's ``ScenePredictor`` with the ServingConfig that registration gives the model: the
same resampling to the training resolution, window blending and TTA as ``segpipe predict``
and the server. The blocks it streams are scored against the ingested mask as they finish,
so memory is bounded by the predictor's window and panel, never by the scene.

Which pixels count: the split's region of each scene (components/split_regions.py). Ground
that an earlier scene of the dataset holds too, with the same pixels and labels (overlapping
chips of one survey), counts where the tile step kept it, with that scene: scored once when
that scene's pixel is in the split, not at all when it is another split's ground
(components/scene_repeats.py); the two are counted apart, pixel by pixel."""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from components.artifacts import SplitName
from components.dataset_paths import PreparedDataset
from components.raster import STEP_DRIVER, crs_string
from components.scene_repeats import (
    Repeat,
    RepeatedGroundWarning,
    SceneGrid,
    find_repeats,
    repeated_mask,
    repeats_line,
)
from components.split_regions import (
    SceneEvaluationError,
    ScenePart,
    check_scene_files,
    native_rects,
    region_mask,
    scene_paths,
    split_scenes,
)
from serving.predict import ReadError, ScenePredictor
from serving.quiet import plain_images_quiet
from serving.resolution import ModelGrid
from serving.scene import MAX_SCENE_PIXELS
from serving.wording import counted


@dataclass(frozen=True)
class SceneScores:
    """A split's scene-level confusion matrix (rows truth, columns prediction), how many
    scenes it covers, and how many pixels it would have scored (labelled, answered by the
    model) were left out as ground an earlier scene holds with the same pixels and labels:
    ``repeated_scored_earlier`` of them scored with an earlier scene of the split,
    ``repeated_other_split`` another split's ground, scored nowhere here."""

    confusion: np.ndarray
    scene_count: int
    repeated_scored_earlier: int = 0
    repeated_other_split: int = 0

    @property
    def repeated_pixels(self) -> int:
        return self.repeated_scored_earlier + self.repeated_other_split


@dataclass(frozen=True)
class _Scored:
    """A scene of the split: its grid and which of its native pixels are in the split
    (``include`` None: all; else inside ``include`` and outside ``exclude``)."""

    grid: SceneGrid
    include: np.ndarray | None
    exclude: np.ndarray | None

    def region(self, row: int, col: int, height: int, width: int) -> np.ndarray | None:
        if self.include is None:
            return None
        return region_mask(self.include, self.exclude, row, col, height, width)


@dataclass(frozen=True)
class _Earlier:
    """An earlier scene's repeat of a scored scene's ground, and where that scene scores it:
    ``scored`` None when it is not in the split; ``repeats`` its own repeated ground, which
    it leaves out too."""

    repeat: Repeat
    scored: _Scored | None
    repeats: list[Repeat]

    def scores(self, row: int, col: int, height: int, width: int) -> np.ndarray:
        """Which pixels of the scored scene's block (at row, col) the earlier scene scores."""
        if self.scored is None:
            return np.zeros((height, width), bool)
        dr, dc = self.repeat.offset  # the same block on the earlier scene's grid
        there = self.scored.region(row + dr, col + dc, height, width)
        inside = np.ones((height, width), bool) if there is None else there
        rows, cols = np.arange(row + dr, row + dr + height), np.arange(col + dc, col + dc + width)
        inside &= ((rows >= 0) & (rows < self.scored.grid.height))[:, None]
        inside &= ((cols >= 0) & (cols < self.scored.grid.width))[None]
        if self.repeats:
            inside &= ~repeated_mask(self.repeats, row + dr, col + dc, height, width)
        return inside


def _scene_grid(dataset: PreparedDataset, name: str) -> SceneGrid:
    image_path, mask_path = scene_paths(Path(dataset.scenes_dir), name)
    info = dataset.tile_manifest.scene(name)
    try:
        with plain_images_quiet(), rasterio.open(image_path, driver=STEP_DRIVER) as image:
            # Cells compared with overlapping scenes: the scene's tiles on its own grid.
            cell = max(1, round(dataset.tile_manifest.patch_size * image.width
                                / info.width))
            return SceneGrid(name, image_path, mask_path, crs_string(image.crs),
                             tuple(image.transform)[:6], image.height, image.width, cell)
    except RasterioError as err:
        raise SceneEvaluationError(f"{image_path.parent}: cannot read scene {name}: "
                                   f"{err}") from None


def _scored(dataset: PreparedDataset, part: ScenePart, grid: SceneGrid) -> _Scored:
    if part.include is None:
        return _Scored(grid, None, None)
    info = dataset.tile_manifest.scene(part.name)
    tiled, native = (info.height, info.width), (grid.height, grid.width)
    return _Scored(grid, native_rects(part.include, tiled, native),
                   native_rects(part.exclude, tiled, native))


def _dataset_grids(dataset: PreparedDataset, split: set[str]) -> list[SceneGrid]:
    """Every scene that may hold ground of the ``split`` scenes, in manifest order: the
    split's own and the georeferenced scenes of other splits before the split's last one
    whose ingested files are there (a scene folder of the split alone compares the split's
    scenes alone). Only earlier scenes are compared, so none after the split's last."""
    grids: list[SceneGrid] = []
    folder = Path(dataset.scenes_dir)
    left = set(split)
    for info in dataset.tile_manifest.scenes:
        if not left:
            break
        if info.name in split or (info.crs and all(
                path.is_file() for path in scene_paths(folder, info.name))):
            grids.append(_scene_grid(dataset, info.name))
        left.discard(info.name)
    return grids


def scene_confusion(predictor: ScenePredictor, dataset: PreparedDataset, split: SplitName, *,
                    tta: bool = False, max_pixels: int = MAX_SCENE_PIXELS,
                    quiet: bool = False) -> SceneScores:
    """The confusion matrix over ``split``'s pixels of every scene it touches, each ground
    pixel of overlapping identical scenes once (said in a ``RepeatedGroundWarning``, unless
    ``quiet``: a re-score of figures already said). Pixels the ingested mask ignores, and
    pixels the model answers as nodata, are left out."""
    k = predictor.config.num_classes
    check_scene_files(dataset, split)
    parts = split_scenes(dataset, split)
    if not parts:
        return SceneScores(np.zeros((k, k), np.int64), 0)
    in_split = {part.name for part in parts}
    grids = _dataset_grids(dataset, in_split)
    index = {grid.name: i for i, grid in enumerate(grids)}
    try:
        repeats = find_repeats(grids, later={index[name] for name in in_split})
    except RasterioError as err:
        raise SceneEvaluationError(f"{dataset.scenes_dir}: cannot compare overlapping scenes: "
                                   f"{err}") from None
    scored = {part.name: _scored(dataset, part, grids[index[part.name]]) for part in parts}
    cm = np.zeros((k, k), np.int64)
    skipped = []
    here = elsewhere = 0
    for part in parts:
        found = repeats[index[part.name]]
        earlier = [_Earlier(r, scored.get(grids[r.earlier].name), repeats[r.earlier])
                   for r in found]
        scene_cm, with_earlier, other_split = _score_scene(predictor, scored[part.name],
                                                           earlier, tta, max_pixels)
        cm += scene_cm
        here, elsewhere = here + with_earlier, elsewhere + other_split
        if with_earlier + other_split:
            names = [grids[r.earlier].name for r in found]
            skipped.append((part.name, with_earlier + other_split, [
                name if name in in_split else f"{name} (not in this split)" for name in names]))
    if skipped and not quiet:
        warnings.warn(repeats_line(split, skipped, here, elsewhere), RepeatedGroundWarning,
                      stacklevel=2)
    return SceneScores(cm, len(parts), here, elsewhere)


def _score_scene(predictor: ScenePredictor, scene: _Scored, earlier: list[_Earlier],
                 tta: bool, max_pixels: int) -> tuple[np.ndarray, int, int]:
    """The scene's confusion matrix and how many of the pixels it would score ``earlier``
    scenes hold instead: scored by one of them in this split, and another split's ground."""
    config = predictor.config
    k = config.num_classes  # labels >= k (the ignore value among them) never count
    image_path, mask_path = scene.grid.image, scene.grid.mask
    cm = np.zeros((k, k), np.int64)
    with_earlier = other_split = 0
    with plain_images_quiet():
        stack = contextlib.ExitStack()
        try:
            image = stack.enter_context(rasterio.open(image_path, driver=STEP_DRIVER))
            labels = stack.enter_context(rasterio.open(mask_path, driver=STEP_DRIVER))
        except RasterioError as err:
            stack.close()
            raise SceneEvaluationError(f"{image_path.parent}: cannot read scene "
                                       f"{scene.grid.name}: {err}") from None
        with stack:
            if (labels.height, labels.width) != (image.height, image.width):
                raise SceneEvaluationError(f"{mask_path}: {labels.width}x{labels.height}, "
                                           f"its image is {image.width}x{image.height}")
            if image.count != config.in_channels:
                raise SceneEvaluationError(f"{image_path}: {counted(image.count, 'band')}, "
                                           f"the model expects {config.in_channels}")
            grid = ModelGrid(image.height, image.width, predictor.resample_factor(image))
            if grid.pixels > max_pixels:
                raise SceneEvaluationError(f"{image_path}: too many pixels: {grid.describe()}, "
                                           f"the limit is {max_pixels}")
            try:
                for block in predictor.iter_dataset(image, tta=tta, factor=grid.factor):
                    predicted = predictor.block_mask(block)
                    height, width = predicted.shape
                    truth = labels.read(1, window=Window(block.col, block.row, width, height))
                    keep = (truth < k) & (predicted < k)
                    if (region := scene.region(block.row, block.col, height, width)) is not None:
                        keep &= region
                    if earlier:
                        block_at = block.row, block.col, height, width
                        again = keep & repeated_mask([e.repeat for e in earlier], *block_at)
                        scored_there = np.zeros_like(again)
                        for e in earlier:
                            scored_there |= e.repeat.mask(*block_at) & e.scores(*block_at)
                        with_earlier += int((again & scored_there).sum())
                        other_split += int((again & ~scored_there).sum())
                        keep &= ~again
                    cm += np.bincount(truth[keep].astype(np.int64) * k + predicted[keep],
                                      minlength=k * k).reshape(k, k)
            except ReadError as err:
                raise SceneEvaluationError(f"{image_path}: {err}: {err.detail}") from None
            except RasterioError as err:
                raise SceneEvaluationError(f"{mask_path}: cannot read the mask: {err}") from None
    return cm, with_earlier, other_split
