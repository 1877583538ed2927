"""What the split step tells the user: why a split is empty and what would fill it, crops of
one image kept together, and crops of one image that a strategy still puts in two splits.

Advice names only what would work for this data: no ``block_size`` for a strategy that has
no blocks, no ``group_by 'parent'`` when the folders do not keep the crops together, and no
strategy that cannot fill the splits without a leak."""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from components.artifacts import SPLIT_NAMES, SplitManifest, TileManifest, TileRecord
from components.split_groups import parent_folders_keep
from components.split_units import carved_splits
from components.wording import counted

if TYPE_CHECKING:
    from components.split import SplitOptions

UNIT_WORDS = {"random": "tile", "scene": "scene", "block": "block", "group": "group",
              "given": "given split"}


def _crops(images: int = 1, example: str = "", verb: str = "look") -> str:
    what = "one image" if images == 1 else f"{images} images"
    return (f"{verb} like crops of {what} (edges that continue each other or content that "
            f"overlaps{example})")


def _active_splits(options: SplitOptions) -> int:
    return sum(r > 0 for r in options.ratios)


def _crop_images(manifest: TileManifest, crops: dict[str, str]) -> tuple[int, int]:
    """(scenes with tiles, images they are crops of) counting a scene alone as an image."""
    scenes = {t.scene for t in manifest.tiles}
    return len(scenes), len({crops[s] for s in scenes})


def kept_together(manifest: TileManifest, crops: dict[str, str]) -> str | None:
    """The line saying which crop groups a strategy that keeps them together kept."""
    scenes = {t.scene for t in manifest.tiles}
    sizes = sorted(n for n in Counter(crops[s] for s in scenes).values() if n > 1)
    if not sizes:
        return None
    if len(sizes) == 1:
        return (f"kept 1 group of {sizes[0]} scenes in one split: they {_crops()}, so splitting "
                "them would test on pixels seen in training")
    sizes_text = (f"{sizes[0]}" if sizes[0] == sizes[-1] else f"{sizes[0]} to {sizes[-1]}")
    return (f"kept {len(sizes)} groups of {sizes_text} scenes ({sum(sizes)} in all) in one "
            f"split each: each group's scenes {_crops()}, so splitting them would test on "
            "pixels seen in training")


def scene_offset(manifest: TileManifest) -> int | None:
    """The largest pixel step every scene origin lies on from the first one's (georeferenced
    scenes of one CRS and pixel size); None when there is none or they coincide."""
    scenes = manifest.scenes
    if not scenes or len({(s.crs, s.transform[0], s.transform[4]) for s in scenes}) != 1 \
            or scenes[0].crs is None:
        return None
    a, e = scenes[0].transform[0], scenes[0].transform[4]
    c0, f0 = scenes[0].transform[2], scenes[0].transform[5]
    steps = []
    for s in scenes[1:]:
        for delta in ((s.transform[2] - c0) / a, (s.transform[5] - f0) / e):
            if abs(delta - round(delta)) > 1e-6:
                return None
            steps.append(abs(round(delta)))
    return math.gcd(*steps) or None


def overlap_advice(options: SplitOptions, manifest: TileManifest | None = None) -> str:
    if options.strategy != "block":
        return ("every tile it would hold shares ground with tiles of other splits (the "
                "scenes overlap: strategy 'block' keeps overlapping ground together)")
    return ("every tile it would hold shares ground with tiles of other blocks (the scenes "
            f"overlap and their tiles straddle block edges: {_aligning_patch(manifest)} "
            "lines the tiles of neighbouring scenes up)")


def _aligning_patch(manifest: TileManifest | None) -> str:
    offset = scene_offset(manifest) if manifest is not None else None
    return (f"patch_size {offset} (the scenes lie on a {offset} px grid)"
            if offset and offset < manifest.patch_size else
            "a smaller patch_size, one that divides the scenes' offset from each other,")


def dropped_tiles_line(dropped: int, options: SplitOptions, manifest: TileManifest,
                       block_size: int | None) -> str:
    """Why ``dropped`` val/test tiles went, and what would keep them under the strategy
    used (``block_size``: the block split's, given or chosen)."""
    what = (f"dropped {dropped} val/test tiles that share ground with tiles of another "
            "split")
    if options.strategy == "random":
        return (f"{what} (overlapping tiles or scenes); use strategy 'block', which keeps "
                "shared ground in one split, or tiles without overlap (stride = patch_size)")
    if options.strategy != "block":
        # A scene's tiles are all in one split: only tiles overlapping other scenes' go, so
        # tiling without overlap would not keep them.
        return (f"{what} (the scenes overlap: a scene's tiles share ground with other "
                "scenes' tiles); use strategy 'block', which keeps shared ground in one split")
    if manifest.stride < manifest.patch_size:
        return (f"{what} (the tiles overlap: stride {manifest.stride} < patch_size "
                f"{manifest.patch_size}, so tiles at block edges share ground with the next "
                "block's); tile without overlap (stride = patch_size), or take larger blocks "
                f"(block_size {block_size} px now) to drop fewer")
    return (f"{what} (the scenes overlap and their tiles straddle block edges); "
            f"{_aligning_patch(manifest)} lines the tiles of neighbouring scenes up")


def too_few_units(manifest: TileManifest, options: SplitOptions, crops: dict[str, str],
                  units: int, together: bool) -> str:
    """Why val/test got nothing when there were too few units to go round."""
    word = UNIT_WORDS[options.strategy] + ("s" if units != 1 else "")
    ratios = ", ".join(map(str, options.ratios))
    scenes, images = _crop_images(manifest, crops)
    if images < scenes and (together or images < _active_splits(options)):
        kept = ", and each image's crops are kept in one split" if together else ""
        return (f"only {units} {'unit' if units == 1 else 'units'} for ratios {ratios}: the "
                f"{scenes} scenes {_crops(images)}{kept}")
    return f"only {units} {word} for ratios {ratios}"


def empty_split_advice(manifest: TileManifest, options: SplitOptions,
                       crops: dict[str, str], together: bool) -> str:
    """What would fill the empty splits, for this strategy and data."""
    scenes, images = _crop_images(manifest, crops)
    if images < _active_splits(options) <= scenes:
        return ("A test that does not leak needs scenes from other images: add them (or "
                "prepare georeferenced originals, which strategy 'block' splits by area), "
                "or, with `segpipe prepare` (not `segpipe run`, which tunes on val and "
                "scores on test), allow_empty_splits to train on all of it elsewhere")
    if options.strategy == "given" and not options.given_names:
        tips = ["given_names to make a split of the dataset's the empty one (e.g. {val: test} "
                "scores on the dataset's val, and carves val from its train by ratios)",
                "a strategy that splits by ratios (scene, or group with group_by)"]
    elif options.strategy == "given" and (missing := _uncarved_empty(manifest, options)):
        tips = ["more data"]
        if _crop_images(manifest, crops)[1] >= _active_splits(options):
            flags = " ".join(f"--given-names {name}=train" for name in missing)
            tips.insert(0, f"given_names mapping the splits the dataset lacks to train "
                           f"({flags}), which carves val and test from its train by ratios")
    elif options.strategy == "given":
        tips = ["other ratios (the share of the given train carved off)", "more data"]
    else:
        tips = ["other ratios"]
        if options.strategy == "block":
            tips.append("a smaller block_size")
        tips += ["another strategy", "more data"]
    tips.append("allow_empty_splits to accept it (`segpipe prepare` only: `segpipe run` "
                "tunes on val and scores on test)")
    return "Use " + ", ".join(tips[:-1]) + ", or " + tips[-1]


def _uncarved_empty(manifest: TileManifest, options: SplitOptions) -> list[str]:
    """Under given_names, the dataset's splits that it gives no scene to (``val`` and
    ``test`` of a dataset of one train split), when a val or test split no ratio carves
    is left empty by them; [] when ratios could fill every empty split."""
    given = {s.given_split for s in manifest.scenes}
    targets = {options.given_names.get(name, name) for name in given}
    carved = carved_splits(options.given_names)
    if all(name in targets or name in carved for name in SPLIT_NAMES[1:]):
        return []
    return [name for name in SPLIT_NAMES[1:] if name not in given]


def straddling_warning(manifest: TileManifest, options: SplitOptions, crops: dict[str, str],
                       straddling: list[tuple[str, str]]) -> str:
    """Crops of one image in different splits, and the strategies that would keep them
    together and still fill every split."""
    a, b = straddling[0]
    scenes, images = _crop_images(manifest, crops)
    needed = _active_splits(options)
    ways = []
    if options.strategy != "scene" and images >= needed:
        ways.append("strategy 'scene' (the default), which keeps the crops of one image in "
                    "one split")
    folders = parent_folders_keep(manifest.scenes, straddling)
    if folders >= needed and not (options.strategy == "group" and options.group_by == "parent"):
        ways.append(f"strategy 'group' with group_by 'parent' ({counted(folders, 'folder')})")
    if ways:
        advice = "use " + " or ".join(ways)
    else:
        advice = (f"all {scenes} scenes come from {counted(images, 'image')}, "
                  f"too few for {needed} splits without a leak: add scenes from other images, "
                  "or prepare georeferenced originals and use strategy 'block'")
    example = f"; e.g. {manifest.scene(a).source or a} and {manifest.scene(b).source or b}"
    one = len(straddling) == 1
    pairs = counted(len(straddling), "pair of scenes", "pairs of scenes")
    return (f"{pairs} {_crops(example=example, verb='looks' if one else 'look')} but "
            f"{'lies' if one else 'lie'} in different splits, so the model is tested on "
            f"pixels it trained on; {advice}")


def empty_split_problems(manifest: TileManifest, assigned: list[list[str]],
                         has_units: list[bool], options: SplitOptions,
                         why_too_few: str) -> list[str]:
    """Val or test splits (with a ratio above 0) that hold no tile, or no labelled pixel;
    ``assigned``: each split's tile ids, ``has_units``: whether units went to it."""
    by_id = {t.id: t for t in manifest.tiles}
    problems: list[str] = []
    empty: dict[str, list[str]] = {}  # the same reason once, for all the splits it empties
    for name, tiles, units, ratio in zip(SPLIT_NAMES, assigned, has_units, options.ratios,
                                         strict=True):
        if options.strategy != "given" and ratio == 0:
            continue
        if name == "train" and tiles:
            continue
        if not tiles:
            why = (overlap_advice(options, manifest) if units
                   else why_too_few if options.strategy != "given"
                   else "ratio 0 carves nothing off the given train for {it}"
                   if name in carved_splits(options.given_names) and ratio == 0
                   else "the given train's scenes are too few to carve {it} off"
                   if name in carved_splits(options.given_names)
                   else "the dataset gives no scene to {it}" + (
                       " under given_names" if options.given_names else ""))
            empty.setdefault(why, []).append(f"'{name}'")
        elif not any(sum(by_id[t].class_counts.values()) for t in tiles):
            problems.append(f"split '{name}' has no labelled pixel in its "
                            f"{counted(len(tiles), 'tile')}")
    return [f"split {names[0]} is empty: {why.replace('{it}', 'it')}" if len(names) == 1
            else f"splits {' and '.join(names)} are empty: {why.replace('{it}', 'them')}"
            for why, names in empty.items()] + problems


# The pipeline's steps after the split, and the split each one cannot do without.
PIPELINE_NEEDS = {"val": "tunes on the val split", "test": "scores the model for the "
                  "champion gate on the test split"}
WHERE_EMPTY_SPLITS_WORK = ("allow_empty_splits is for `segpipe prepare`, whose dataset is "
                           "trained or scored elsewhere")


# A dataset whose labels hold one class: said by prepare (a set of negatives is still worth
# scoring a model on), refused by the pipeline (no model learns from it). The split step
# sees every kept tile, so the line is the split's; a class only some splits lack is the
# split's "missing from split" warning instead.
ONE_CLASS = "the labels hold one class"
ONE_CLASS_PREPARE = ("a model cannot be trained on it (segpipe run refuses it); segpipe "
                     "evaluate can still score a model on it, as a set of negatives")
ONE_CLASS_RUN = ("segpipe run trains a model to tell classes apart: check that the labels "
                 "are the ones meant and how they are read (ingest.class_values, "
                 "ingest.ignore_values, the palette)")


def one_class_line(tiles: list[TileRecord], class_names: list[str] | None) -> str | None:
    """The prepare warning for ``tiles`` (every kept tile) whose labelled pixels are all one
    class; None when they hold two or more (or none, which other checks refuse)."""
    counts: Counter = Counter()
    for tile in tiles:
        counts.update({c: n for c, n in tile.class_counts.items() if n})
    if len(counts) != 1:
        return None
    (only, pixels), = counts.items()
    names = class_names or []
    name = names[only] if only < len(names) else f"class {only}"
    others = [n for n in names if n != name]
    lacking = f"; {', '.join(others)} {'has' if len(others) == 1 else 'have'} none" \
        if others else ""
    return (f"{ONE_CLASS} ({name}): nothing to segment (all {counted(pixels, 'labelled pixel')} "
            f"of the {counted(len(tiles), 'tile')} are {name}{lacking}); {ONE_CLASS_PREPARE}")


def pipeline_split_problem(split: SplitManifest, tiles: TileManifest,
                           class_names: list[str] | None) -> str | None:
    """Why the pipeline (tuning on val, scoring on test) cannot go on with ``split`` of
    ``tiles``, in one line with the split step's own reason; None when it can. One class
    is worked out from the split's tiles, not read from its warnings: a split written
    before that warning existed is refused alike."""
    by_id = {t.id: t for t in tiles.tiles}
    kept = [by_id[t] for ids in split.splits.values() for t in ids if t in by_id]
    if one := one_class_line(kept, class_names):
        return f"{one.removesuffix(ONE_CLASS_PREPARE)}{ONE_CLASS_RUN}"
    for name, needs in PIPELINE_NEEDS.items():
        if not split.splits.get(name):
            # the split step's warning "split(s) 'val' ... empty: why (accepted: ...)"
            why = next((w.split(": ", 1)[-1].removesuffix(" (accepted: allow_empty_splits)")
                        for w in split.warnings if f"'{name}'" in w and " empty: " in w),
                       "no tile went to it")
            return (f"segpipe run {needs}, which is empty: {why}; {WHERE_EMPTY_SPLITS_WORK}")
    return None
