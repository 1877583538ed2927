"""Split: tiles -> train/val/test without leakage.

Tiles are grouped into units that never straddle splits: single tiles (``random``), scenes
(``scene``), spatial blocks (``block``), groups of scenes (``group``: by source folder, a
regex on the source path or a CSV), or the dataset's own splits (``given``). Blocks are
world-coordinate squares when every scene shares one CRS, so adjacent chips of one grid
(e.g. exported GIS chips) that touch share a block and land in the same split; otherwise
blocks are per-scene pixel squares. Units are assigned greedily in a seeded order (rarest
class first) to the split furthest below its share of the unit's rarest class (iterative
stratification: a rare class is spread by the ratios, not piled into train), then below its
share of tiles, preferring splits that still lack one of the unit's classes.

Scenes that look like crops of one image (``SceneInfo.neighbours``: touching or overlapping,
found by the tile step) are kept in one unit by ``scene`` and by per-scene ``block``, with a
line saying how many groups of how many scenes; the other strategies warn when they put such
scenes in two splits (``split_advice``). A val or test split left empty (or without a
labelled pixel) is an error unless ``allow_empty_splits``, with advice for the strategy."""

from __future__ import annotations

import math
import random
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.artifacts import (
    SPLIT_NAMES,
    ClassMap,
    DatasetPaths,
    SplitManifest,
    TileManifest,
    TileRecord,
)
from components.raster import DataError
from components.split_advice import (
    empty_split_advice,
    empty_split_problems,
    kept_together,
    pipeline_split_problem,
    straddling_warning,
    too_few_units,
)
from components.split_groups import (
    check_group_by,
    crop_groups,
    given_units,
    scene_groups,
    straddling_neighbours,
)


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
                                   "pixels; None = 4, 2 or 1 patches, the largest that gives "
                                   "at least 10 blocks")
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

    @field_validator("group_by")
    @classmethod
    def _group_by_valid(cls, group_by: str) -> str:
        return check_group_by(group_by)

    @field_validator("ratios")
    @classmethod
    def _ratios_sum_to_one(cls, ratios: tuple[float, float, float]):
        if min(ratios) < 0 or ratios[0] <= 0 or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
            raise ValueError(f"ratios {ratios} must be >= 0, train > 0, and sum to 1")
        return ratios


@dataclass
class _Unit:
    key: tuple
    tiles: list[str]
    classes: set[int]
    pixels: Counter = field(default_factory=Counter)  # class -> labelled pixels


def _block_keys(manifest: TileManifest, block_size: int) -> dict[str, tuple]:
    half = manifest.patch_size / 2
    keys = {}
    if _world_grid(manifest):
        # One CRS: blocks on the world grid, sized in the first scene's pixels.
        # The grid is anchored at the scenes' top-left corner, so blocks of a chip's size
        # line up with chips exported side by side.
        a, _, _, _, e, _ = manifest.scenes[0].transform
        size_x, size_y = abs(a) * block_size, abs(e) * block_size
        x0 = min(s.transform[2] for s in manifest.scenes)
        y0 = max(s.transform[5] for s in manifest.scenes)
        for t in manifest.tiles:
            ta, tb, tc, td, te, tf = t.transform
            x, y = tc + ta * half + tb * half, tf + td * half + te * half
            keys[t.id] = ("world", math.floor((x - x0) / size_x), math.floor((y0 - y) / size_y))
    else:
        for t in manifest.tiles:
            col, row = t.window[0] + half, t.window[1] + half
            keys[t.id] = (t.scene, int(col // block_size), int(row // block_size))
    return keys


def default_block_size(manifest: TileManifest, min_blocks: int = 10) -> int:
    """The largest of 4, 2 or 1 patches that cuts the area into ``min_blocks`` blocks or more:
    large blocks keep neighbours together, but too few of them cannot fill three splits."""
    for patches in (4, 2):
        size = patches * manifest.patch_size
        if len(set(_block_keys(manifest, size).values())) >= min_blocks:
            return size
    return manifest.patch_size


def _world_grid(manifest: TileManifest) -> bool:
    crs = {s.crs for s in manifest.scenes}
    return len(crs) == 1 and None not in crs


def keeps_crops_together(manifest: TileManifest, options: SplitOptions) -> bool:
    """Whether the strategy keeps each crop group (crops of one image) in one split: scenes,
    and blocks that are per-scene pixel squares (no shared CRS to place the scenes by)."""
    return options.strategy == "scene" or (options.strategy == "block"
                                           and not _world_grid(manifest))


def _units(manifest: TileManifest, options: SplitOptions,
           crops: dict[str, str]) -> list[_Unit]:
    together = keeps_crops_together(manifest, options)
    joined = Counter(crops.values())
    if options.strategy == "random":
        keys = {t.id: (t.id,) for t in manifest.tiles}
    elif options.strategy == "scene":
        keys = {t.id: (crops[t.scene],) for t in manifest.tiles}
    elif options.strategy == "group":
        groups = scene_groups(manifest, options.group_by)
        keys = {t.id: ("group", groups[t.scene]) for t in manifest.tiles}
    elif options.strategy == "given":
        given = given_units(manifest)
        keys = {t.id: ("given", given[t.scene]) for t in manifest.tiles}
    else:
        keys = _block_keys(manifest, options.block_size or default_block_size(manifest))
        if together:
            keys = {t.id: ("crops", crops[t.scene]) if joined[crops[t.scene]] > 1
                    else keys[t.id] for t in manifest.tiles}
    grouped: dict[tuple, list[TileRecord]] = defaultdict(list)
    for t in manifest.tiles:
        grouped[keys[t.id]].append(t)
    return [_Unit(key, [t.id for t in tiles], {c for t in tiles for c, n in
                                               t.class_counts.items() if n},
                  sum((Counter(t.class_counts) for t in tiles), Counter()))
            for key, tiles in sorted(grouped.items(), key=lambda kv: str(kv[0]))]


def _assign(units: list[_Unit], ratios: tuple[float, ...], seed: int) -> list[list[_Unit]]:
    rng = random.Random(seed)
    rng.shuffle(units)
    frequency = Counter(c for u in units for c in u.classes)
    units.sort(key=lambda u: min((frequency[c] for c in u.classes), default=len(units) + 1))
    total = sum(len(u.tiles) for u in units)
    class_total = sum((u.pixels for u in units), Counter())
    active = [i for i, r in enumerate(ratios) if r > 0]
    splits: list[list[_Unit]] = [[] for _ in ratios]
    filled = [0] * len(ratios)
    class_filled: list[Counter] = [Counter() for _ in ratios]
    present: list[set[int]] = [set() for _ in ratios]
    for unit in units:
        # The unit's rarest class, if some units lack it (a class every unit holds is spread
        # by the tile ratios already, and stratifying on it would only skew them).
        rarest = min(unit.classes, key=lambda c: (frequency[c], class_total[c], c),
                     default=None)
        if rarest is not None and (frequency[rarest] == len(units) or not class_total[rarest]):
            rarest = None

        def score(i: int, unit: _Unit = unit, rarest: int | None = rarest
                  ) -> tuple[float, float, float]:
            deficit = (ratios[i] * total - filled[i]) / total
            not_full = deficit > -len(unit.tiles) / (2 * total)
            missing = len(unit.classes - present[i]) > 0
            # Stratified on that class (iterative stratification): the split furthest below
            # its share of the class's pixels gets it, so a rare class is spread by the
            # ratios instead of filling train first, where the tile deficit is largest; a
            # split already over its share of tiles does not.
            class_deficit = 0.0
            if rarest is not None:
                class_deficit = ((ratios[i] * class_total[rarest] - class_filled[i][rarest])
                                 / class_total[rarest]) if not_full else -math.inf
            # A split that lacks one of this unit's classes gets it unless it is already full.
            return (float(missing and not_full), class_deficit, deficit)
        best = max(active, key=score)
        splits[best].append(unit)
        filled[best] += len(unit.tiles)
        class_filled[best] += unit.pixels
        present[best] |= unit.classes
    # With few units, make every active split non-empty by taking from the largest.
    for i in active:
        if not splits[i]:
            donor = max(active, key=lambda j: len(splits[j]))
            if len(splits[donor]) > 1:
                moved = min(splits[donor], key=lambda u: len(u.tiles))
                splits[donor].remove(moved)
                splits[i].append(moved)
    return splits


def _footprint(tile: TileRecord, patch: int, size: tuple[int, int],
               world: bool) -> tuple[str, float, float, float, float]:
    """The ground a tile really covers: its in-scene part, not the padding past the edge."""
    col, row = tile.window[:2]
    w, h = min(patch, size[0] - col), min(patch, size[1] - row)
    if world:
        a, _, c, _, e, f = tile.transform
        xs, ys = sorted((c, c + a * w)), sorted((f, f + e * h))
        return "world", xs[0], ys[0], xs[1], ys[1]
    return tile.scene, col, row, col + w, row + h


def _cross_split_overlaps(manifest: TileManifest, where: dict[str, int]) -> list[tuple[str, str]]:
    """Pairs of tiles in different splits whose footprints share ground (positive area).
    Tiles are bucketed on a grid of tile-sized cells, so this stays near-linear."""
    world = _world_grid(manifest)
    sizes = {s.name: (s.width, s.height) for s in manifest.scenes}
    boxes = {t.id: _footprint(t, manifest.patch_size, sizes[t.scene], world)
             for t in manifest.tiles}
    cell = max(max(b[3] - b[1], b[4] - b[2]) for b in boxes.values())
    buckets: dict[tuple, list[str]] = defaultdict(list)
    for tile_id, (space, x0, y0, x1, y1) in boxes.items():
        for i in range(math.floor(x0 / cell), math.floor(x1 / cell) + 1):
            for j in range(math.floor(y0 / cell), math.floor(y1 / cell) + 1):
                buckets[(space, i, j)].append(tile_id)
    pairs = set()
    for members in buckets.values():
        for k, a in enumerate(members):
            for b in members[k + 1:]:
                if where[a] == where[b] or (a, b) in pairs:
                    continue
                _, ax0, ay0, ax1, ay1 = boxes[a]
                _, bx0, by0, bx1, by1 = boxes[b]
                width, height = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
                if width > 1e-6 * cell and height > 1e-6 * cell:
                    pairs.add((a, b))
    return sorted(pairs)


def _drop_overlaps(manifest: TileManifest, assigned: list[list[_Unit]]) -> int:
    """Remove val/test tiles that share ground with another split's tile; return the count.
    Val gives way before test, test before train: training data and the final test are
    the most precious."""
    where = {t: i for i, units in enumerate(assigned) for u in units for t in u.tiles}
    priority = {0: 2, 2: 1, 1: 0}  # higher keeps its tile
    dropped = set()
    for a, b in _cross_split_overlaps(manifest, where):
        if a in dropped or b in dropped:
            continue
        dropped.add(a if priority[where[a]] < priority[where[b]] else b)
    for units in assigned:
        for unit in units:
            unit.tiles = [t for t in unit.tiles if t not in dropped]
    return len(dropped)


def _assign_given(units: list[_Unit]) -> list[list[_Unit]]:
    return [[u for u in units if u.key == ("given", name)] for name in SPLIT_NAMES]


def split_tiles(dataset_dir: Path, out_path: Path,
                options: SplitOptions | None = None) -> SplitManifest:
    """Assign the tiles of ``dataset_dir/tiles.json`` to splits; write ``out_path``."""
    options = options or SplitOptions()
    paths = DatasetPaths(dataset_dir)
    manifest = TileManifest.load(paths.tiles_manifest)
    if not manifest.tiles:
        raise DataError(f"{paths.tiles_manifest}: no tiles to split")
    class_names = (ClassMap.load(paths.classes).names if paths.classes.exists() else None)
    crops = crop_groups(manifest.scenes)
    together = keeps_crops_together(manifest, options)
    units = _units(manifest, options, crops)
    assigned = (_assign_given(units) if options.strategy == "given"
                else _assign(units, options.ratios, options.seed))
    messages = [line] if together and (line := kept_together(manifest, crops)) else []
    if options.drop_overlaps and (dropped := _drop_overlaps(manifest, assigned)):
        messages.append(f"dropped {dropped} val/test tiles that share ground with tiles of "
                        "another split (overlapping tiles or scenes); use strategy 'block', "
                        "no overlap, or a block size that is a multiple of the stride")
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

    def classes_of(units_: list[_Unit]) -> set[int]:
        return {c for u in units_ for t in u.tiles for c, n in by_id[t].class_counts.items() if n}

    all_classes = classes_of(units)
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
                           block_size=(options.block_size or default_block_size(manifest))
                           if options.strategy == "block" else None,
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
    if problem := pipeline_split_problem(manifest):
        raise DataError(problem)
    return manifest

