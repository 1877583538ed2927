"""Split: tiles -> train/val/test without leakage.

The strategies (components/split_units.py) group tiles into units that never straddle
splits and assign the units; this module holds the step's options and what it checks and
writes: val/test tiles that share ground with another split's tile are dropped
(``drop_overlaps``; scenes in other CRSs are compared after reprojection, by
``split_ground``), a split that lacks a class is a warning, and the manifest is written.

Scenes that look like crops of one image (``SceneInfo.neighbours``: touching or overlapping,
found by the tile step) are kept in one unit by ``scene`` and by per-scene ``block``, with a
line saying how many groups of how many scenes; the other strategies warn when they put such
scenes in two splits (``split_advice``). A val or test split left empty (or without a
labelled pixel) is an error unless ``allow_empty_splits``, with advice for the strategy."""

from __future__ import annotations

import logging
import math
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.artifacts import (
    SPLIT_NAMES,
    ClassMap,
    SplitManifest,
    SplitName,
    TileManifest,
)
from components.dataset_paths import DatasetPaths
from components.raster import DataError
from components.split_advice import (
    dropped_tiles_line,
    empty_split_advice,
    empty_split_problems,
    kept_together,
    one_class_line,
    pipeline_split_problem,
    straddling_warning,
    too_few_units,
)
from components.split_ground import (
    GroundFrame,
    frame_line,
    ground_frame,
    shares_ground,
    tile_footprints,
)
from components.split_groups import check_group_by, crop_groups, straddling_neighbours
from components.split_units import (
    Unit,
    assign_given,
    assign_units,
    default_block_size,
    keeps_crops_together,
    tile_units,
)

log = logging.getLogger(__name__)


class SplitWarning(UserWarning):
    """A split lacks a class or tiles; the dataset is usable but weaker for it."""


class SplitOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: Literal["random", "scene", "block", "group", "given"] = Field(
        default="scene", description="unit that never straddles splits: tile, scene, spatial "
        "block, group of scenes (group_by), or the dataset's own train/val/test (given)")
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    block_size: int | None = Field(default=None, ge=1, description="block side in (tiled-grid) "
                                   "pixels; None = chosen from the survey's extent: 4, 2 or 1 "
                                   "patches, the largest that gives at least 10 blocks (so "
                                   "small surveys and large scenes both split; recorded in "
                                   "split.json, printed by segpipe prepare)")
    group_by: str = Field(
        default="parent", description="strategy group: 'parent' (the scene's source folder), "
        "a path to a CSV of scene,group rows, or a regular expression whose first group, "
        "searched in the scene's source path, is its group")
    drop_overlaps: bool = Field(
        default=True, description="drop val/test tiles that share ground with a tile of "
        "another split (overlapping tiles or scenes), so no pixel is seen in two splits")
    allow_empty_splits: bool = Field(
        default=False, description="accept a val or test split that ends up empty or without "
        "labelled pixels (kept as a warning in split.json) instead of failing")
    given_names: dict[SplitName, SplitName] = Field(
        default={}, description="strategy given: the dataset's split -> the split it "
        "becomes, e.g. {val: test} to score on the dataset's val when its test has no labels "
        "(LoveDA); a split that none becomes (here val) is then carved from the given train "
        "by ratios, whole scenes (crops of one image together)")

    @field_validator("group_by")
    @classmethod
    def _group_by_valid(cls, group_by: str) -> str:
        return check_group_by(group_by)

    @model_validator(mode="after")
    def _given_names_fit(self) -> SplitOptions:
        if self.given_names and self.strategy != "given":
            raise ValueError(f"given_names applies to strategy 'given' only (strategy is "
                             f"{self.strategy!r})")
        if self.given_names and "train" not in {self.given_names.get(s, s)
                                                for s in SPLIT_NAMES}:
            raise ValueError(f"given_names {self.given_names} leaves no split of the "
                             "dataset's for train")
        return self

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]):
        if min(ratios) < 0 or ratios[0] <= 0 or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
            raise ValueError(f"ratios {ratios} must be >= 0, train > 0, and sum to 1")
        return ratios


def _cross_split_overlaps(manifest: TileManifest, where: dict[str, int],
                          frame: GroundFrame) -> list[tuple[str, str]]:
    """Pairs of tiles in different splits whose footprints share ground (positive area).
    Tiles are bucketed on a grid of tile-sized cells per space, so this stays near-linear."""
    boxes = tile_footprints(manifest, frame)
    cells: dict[str, float] = defaultdict(float)
    for box in boxes.values():
        cells[box.space] = max(cells[box.space], box.x1 - box.x0, box.y1 - box.y0)
    buckets: dict[tuple, list[str]] = defaultdict(list)
    for tile_id, (space, x0, y0, x1, y1, *_) in boxes.items():
        cell = cells[space]
        for i in range(math.floor(x0 / cell), math.floor(x1 / cell) + 1):
            for j in range(math.floor(y0 / cell), math.floor(y1 / cell) + 1):
                buckets[(space, i, j)].append(tile_id)
    pairs = set()
    for (space, *_), members in buckets.items():
        tolerance = 1e-6 * cells[space]
        for k, a in enumerate(members):
            for b in members[k + 1:]:
                if where[a] == where[b] or (a, b) in pairs:
                    continue
                if shares_ground(boxes[a], boxes[b], tolerance):
                    pairs.add((a, b))
    return sorted(pairs)


def _drop_overlaps(manifest: TileManifest, assigned: list[list[Unit]],
                   frame: GroundFrame) -> int:
    """Remove val/test tiles that share ground with another split's tile; return the count.
    Val gives way before test, test before train: training data and the final test are
    the most precious."""
    where = {t: i for i, units in enumerate(assigned) for u in units for t in u.tiles}
    priority = {0: 2, 2: 1, 1: 0}  # higher keeps its tile
    dropped = set()
    for a, b in _cross_split_overlaps(manifest, where, frame):
        if a in dropped or b in dropped:
            continue
        dropped.add(a if priority[where[a]] < priority[where[b]] else b)
    for units in assigned:
        for unit in units:
            unit.tiles = [t for t in unit.tiles if t not in dropped]
    return len(dropped)


def _class_names(paths: DatasetPaths) -> list[str] | None:
    return ClassMap.load(paths.classes).names if paths.classes.exists() else None


def split_tiles(dataset_dir: Path, out_path: Path,
                options: SplitOptions | None = None) -> SplitManifest:
    """Assign the tiles of ``dataset_dir/tiles.json`` to splits; write ``out_path``."""
    options = options or SplitOptions()
    paths = DatasetPaths(dataset_dir)
    manifest = TileManifest.load(paths.tiles_manifest)
    if not manifest.tiles:
        raise DataError(f"{paths.tiles_manifest}: no tiles to split")
    class_names = _class_names(paths)
    crops = crop_groups(manifest.scenes)
    together = keeps_crops_together(manifest, options)
    units = tile_units(manifest, options, crops)
    block_size = ((options.block_size or default_block_size(manifest))
                  if options.strategy == "block" else None)
    if options.strategy == "block" and options.block_size is None:
        log.info("block_size: %d px, chosen from the survey's extent (the largest of 4, 2 or 1 "
                 "patches that cuts it into at least 10 blocks)", block_size)
    assigned = (assign_given(units, options) if options.strategy == "given"
                else assign_units(units, options.ratios, options.seed))
    messages = [line] if together and (line := kept_together(manifest, crops)) else []
    frame = ground_frame(manifest)
    if (options.drop_overlaps or options.strategy == "block") and \
            (line := frame_line(manifest, frame)):
        messages.append(line)
    if options.drop_overlaps and (dropped := _drop_overlaps(manifest, assigned, frame)):
        messages.append(dropped_tiles_line(dropped, options, manifest, block_size))
    splits = {name: sorted(t for u in units_ for t in u.tiles)
              for name, units_ in zip(SPLIT_NAMES, assigned, strict=True)}
    problems = empty_split_problems(
        manifest, list(splits.values()), [bool(u) for u in assigned], options,
        too_few_units(manifest, options, crops, len(units), together))
    if problems and not options.allow_empty_splits:
        raise DataError(f"strategy '{options.strategy}': {'; '.join(problems)}. "
                        f"{empty_split_advice(manifest, options, crops, together)}")
    messages += [f"{p} (accepted: allow_empty_splits)" for p in problems]
    by_id = {t.id: t for t in manifest.tiles}

    def classes_of(units_: list[Unit]) -> set[int]:
        return {c for u in units_ for t in u.tiles for c, n in by_id[t].class_counts.items() if n}

    all_classes = classes_of(units)
    kept = [by_id[t] for ids in splits.values() for t in ids]
    if line := one_class_line(kept, class_names):
        messages.append(line)
    for name, units_ in zip(SPLIT_NAMES, assigned, strict=True):
        if not any(u.tiles for u in units_):
            continue
        for c in sorted(all_classes - classes_of(units_)):
            label = class_names[c] if class_names and c < len(class_names) else str(c)
            messages.append(f"class {c} ({label}) is missing from split '{name}'")
    split_of_scene: dict[str, set[str]] = defaultdict(set)
    for name, ids in splits.items():
        for t in ids:
            split_of_scene[by_id[t].scene].add(name)
    if straddling := straddling_neighbours(manifest.scenes, split_of_scene):
        messages.append(straddling_warning(manifest, options, crops, straddling))
    for message in messages:
        warnings.warn(message, SplitWarning, stacklevel=2)
    result = SplitManifest(strategy=options.strategy, seed=options.seed, ratios=options.ratios,
                           block_size=block_size,
                           group_by=options.group_by if options.strategy == "group" else None,
                           splits=splits, warnings=messages)
    result.save(out_path)
    return result


def split_for_training(dataset_dir: Path, out_path: Path,
                       options: SplitOptions | None = None) -> SplitManifest:
    """``split_tiles`` for the pipeline, which tunes on val and scores on test: a split that
    ``allow_empty_splits`` let through with either of them empty fails here, in one line,
    not as failed trials later."""
    manifest = split_tiles(dataset_dir, out_path, options)
    paths = DatasetPaths(dataset_dir)
    if problem := pipeline_split_problem(manifest, TileManifest.load(paths.tiles_manifest),
                                         _class_names(paths)):
        raise DataError(problem)
    return manifest

