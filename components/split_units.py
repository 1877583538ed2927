"""The split strategies: how tiles are grouped into units that never straddle splits, and
how units are assigned to train/val/test (components/split.py checks the result for leaks
and writes the manifest).

Units are single tiles (``random``), scenes (``scene``), spatial blocks (``block``), groups of
scenes (``group``: by source folder, a regex on the source path or a CSV), or the dataset's
own splits (``given``). Blocks are world-coordinate squares for georeferenced scenes, in the
CRS most scenes use (components/split_ground.py reprojects the others), so adjacent chips of
one grid (e.g. exported GIS chips) that touch share a block and land in the same split;
scenes without a CRS get per-scene pixel squares. Scenes that look like crops of one image
(without a CRS) are one unit under ``scene`` and ``block``. Units are assigned greedily
in a seeded order (rarest class first) to the split furthest below its share of the unit's
rarest class (iterative stratification: a rare class is spread by the ratios, not piled into
train), then below its share of tiles, preferring splits that still lack one of the unit's
classes."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from components.artifacts import SPLIT_NAMES, TileManifest, TileRecord
from components.split_ground import WORLD, ground_frame, tile_centres
from components.split_groups import given_units, scene_groups

if TYPE_CHECKING:
    from components.split import SplitOptions


@dataclass
class Unit:
    """Tiles that go to one split together, with the classes they hold."""

    key: tuple
    tiles: list[str]
    classes: set[int]
    pixels: Counter = field(default_factory=Counter)  # class -> labelled pixels


def _block_keys(manifest: TileManifest, block_size: int) -> dict[str, tuple]:
    frame = ground_frame(manifest)
    centres = tile_centres(manifest, frame)
    if frame.crs:
        # Blocks on the world grid of the frame's CRS, sized in the pixels of its first scene.
        # The grid is anchored at those scenes' top-left corner, so blocks of a chip's size
        # line up with chips exported side by side.
        native = [s for s in manifest.scenes if s.crs == frame.crs]
        a, _, _, _, e, _ = native[0].transform
        size_x, size_y = abs(a) * block_size, abs(e) * block_size
        x0 = min(s.transform[2] for s in native)
        y0 = max(s.transform[5] for s in native)
    return {tile_id: ("world", math.floor((x - x0) / size_x),
                      math.floor((y0 - y) / size_y))
            if space == WORLD else (space, int(x // block_size), int(y // block_size))
            for tile_id, (space, x, y) in centres.items()}


def default_block_size(manifest: TileManifest, min_blocks: int = 10) -> int:
    """The largest of 4, 2 or 1 patches that cuts the area into ``min_blocks`` blocks or more:
    large blocks keep neighbours together, but too few of them cannot fill three splits."""
    for patches in (4, 2):
        size = patches * manifest.patch_size
        if len(set(_block_keys(manifest, size).values())) >= min_blocks:
            return size
    return manifest.patch_size


def keeps_crops_together(manifest: TileManifest, options: SplitOptions) -> bool:
    """Whether the strategy keeps each crop group (crops of one image, scenes without a CRS)
    in one split: scenes, and blocks, which are per-scene pixel squares for such scenes (no
    CRS to place them by)."""
    return options.strategy == "scene" or (options.strategy == "block"
                                           and any(s.crs is None for s in manifest.scenes))


def tile_units(manifest: TileManifest, options: SplitOptions,
               crops: dict[str, str]) -> list[Unit]:
    """The tiles grouped by ``options.strategy``; ``crops`` maps each scene to its crop
    group (components.split_groups.crop_groups)."""
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
        given = {scene: options.given_names.get(split, split)
                 for scene, split in given_units(manifest).items()}
        carve = bool(carved_splits(options.given_names))
        keys = {t.id: ("carved", crops[t.scene]) if carve and given[t.scene] == "train"
                else ("given", given[t.scene]) for t in manifest.tiles}
    else:
        keys = _block_keys(manifest, options.block_size or default_block_size(manifest))
        if together:
            keys = {t.id: ("crops", crops[t.scene]) if joined[crops[t.scene]] > 1
                    else keys[t.id] for t in manifest.tiles}
    grouped: dict[tuple, list[TileRecord]] = defaultdict(list)
    for t in manifest.tiles:
        grouped[keys[t.id]].append(t)
    return [Unit(key, [t.id for t in tiles], {c for t in tiles for c, n in
                                              t.class_counts.items() if n},
                 sum((Counter(t.class_counts) for t in tiles), Counter()))
            for key, tiles in sorted(grouped.items(), key=lambda kv: str(kv[0]))]


def assign_units(units: list[Unit], ratios: tuple[float, ...],
                 seed: int) -> list[list[Unit]]:
    """The units of each split, in SPLIT_NAMES order, by seeded iterative stratification
    (module docstring); every split with a ratio gets a unit when there are enough."""
    rng = random.Random(seed)
    rng.shuffle(units)
    frequency = Counter(c for u in units for c in u.classes)
    units.sort(key=lambda u: min((frequency[c] for c in u.classes), default=len(units) + 1))
    total = sum(len(u.tiles) for u in units)
    class_total = sum((u.pixels for u in units), Counter())
    active = [i for i, r in enumerate(ratios) if r > 0]
    splits: list[list[Unit]] = [[] for _ in ratios]
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

        def score(i: int, unit: Unit = unit, rarest: int | None = rarest
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


def carved_splits(given_names: dict[str, str]) -> list[str]:
    """The splits that no split of the dataset's becomes under ``given_names``: carved from
    the given train (none without ``given_names``)."""
    targets = {given_names.get(name, name) for name in SPLIT_NAMES}
    return [name for name in SPLIT_NAMES if given_names and name not in targets]


def assign_given(units: list[Unit], options: SplitOptions) -> list[list[Unit]]:
    """The units of each split as the dataset itself split them (strategy ``given``), after
    ``given_names``; the splits none becomes get units of the given train by the ratios."""
    splits = [[u for u in units if u.key == ("given", name)] for name in SPLIT_NAMES]
    pool = [u for u in units if u.key[0] == "carved"]
    if pool:
        carved = carved_splits(options.given_names)
        ratios = [r if name == "train" or name in carved else 0.0
                  for name, r in zip(SPLIT_NAMES, options.ratios, strict=True)]
        shares = tuple(r / sum(ratios) for r in ratios)
        for split, part in zip(splits, assign_units(pool, shares, options.seed), strict=True):
            split += part
    return splits
