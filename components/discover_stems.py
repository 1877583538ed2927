"""Pairing images with labels by name, for scene discovery (components/discover.py).

Across two folders an image and a label pair by their path below their folder without the
extension (``a.jpg`` <-> ``a.png``, ``x.tiff`` <-> ``x.tif``), else once a known image
suffix is dropped from the image's stem and a known label suffix from the label's
(``a_RGBIR`` <-> ``a_label_noBoundary``; the suffixes are in components/discover_rules.py),
or once a stem's first or last word that is its folder's name is dropped (SpaceNet's
``MUL/MUL_x`` <-> ``buildings/buildings_x``, Sen1Floods11's ``S1Hand/x_S1Hand`` <->
``LabelHand/x_LabelHand``); with ``ingest.pair_by`` set, by the scene id its first group
takes out of both stems instead. In one folder only the suffixes tell a label from an image
(``a_sat.jpg`` <-> ``a_mask.png``, ``a.jpg`` <-> ``a_m.png``). A file never gets two
partners: an image that two labels fit, or a label that two images fit, is an error naming
the three files."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from components.discover_rules import (
    IMAGE_STEM_SUFFIXES,
    LABEL_STEM_SUFFIXES,
    image_base,
    is_label_file,
    is_raster,
    label_base,
    without_folder_name,
)
from components.raster import DataError
from components.wording import counted

#: Why two folders' files pair, for the errors when none do.
PAIRING_RULE = (
    "an image and its label pair by their path in their folder without the extension, or by "
    f"their stems without a suffix (images: {' '.join(IMAGE_STEM_SUFFIXES)}; labels: "
    f"{' '.join(LABEL_STEM_SUFFIXES)}, any case) or without their folder's name as first or "
    "last word (MUL/MUL_x.tif, buildings/buildings_x.geojson)")


@dataclass
class StemMatch:
    pairs: list[tuple[Path, Path]]  # (image, label), in the images' order
    images_left: list[Path]
    labels_left: list[Path]


def _key(path: Path, folder: Path) -> tuple[str, str]:
    """(the folders below ``folder`` with a trailing /, the stem), in lower case."""
    rel = path.relative_to(folder).with_suffix("").as_posix().lower()
    head, _, stem = rel.rpartition("/")
    return (head + "/" if head else ""), stem


def _rasters_first(found: list[Path]) -> list[Path]:
    """A raster mask wins over a JSON sidecar of the same name."""
    return [p for p in found if is_raster(p)] or found


def _ambiguous(one: Path, others: list[Path], what: str) -> DataError:
    return DataError(f"{one} fits two {what}, {others[0]} and {others[1]}, by name: a file "
                     f"pairs with one partner only; remove or rename one of them")


def _id_key(path: Path, folder: Path, pair_by: re.Pattern) -> str | None:
    """The folders below ``folder`` and the first group of ``pair_by`` searched in the stem."""
    head, _ = _key(path, folder)
    found = pair_by.search(path.stem)
    return head + found.group(1) if found and found.group(1) is not None else None


class _Claims:
    """Which label each image took, and which images each label was taken by."""

    def __init__(self) -> None:
        self.claimed: dict[Path, list[Path]] = defaultdict(list)
        self.chosen: dict[Path, Path] = {}

    def take(self, image: Path, found: list[Path]) -> None:
        """``image`` takes its one fitting label; two fitting are an error."""
        if len(found) > 1:
            raise _ambiguous(image, found, "labels")
        if found:
            self.claimed[found[0]].append(image)
            self.chosen[image] = found[0]

    def result(self, images: list[Path], labels: list[Path]) -> StemMatch:
        for label, fits in self.claimed.items():
            if len(fits) > 1:
                raise _ambiguous(label, fits, "images")
        pairs = [(image, self.chosen[image]) for image in images if image in self.chosen]
        return StemMatch(pairs, [p for p in images if p not in self.chosen],
                         [p for p in labels if p not in self.claimed])


def _match_ids(images: list[Path], image_dir: Path, labels: list[Path], label_dir: Path,
               pair_by: re.Pattern) -> StemMatch:
    """Pairs by the scene id ``pair_by`` takes out of both names (and nothing else)."""
    by_id: dict[str, list[Path]] = defaultdict(list)
    for label in labels:
        if (key := _id_key(label, label_dir, pair_by)) is not None:
            by_id[key].append(label)
    claims = _Claims()
    for image in images:
        key = _id_key(image, image_dir, pair_by)
        claims.take(image, _rasters_first([p for p in by_id.get(key, []) if p != image])
                    if key else [])
    return claims.result(images, labels)


def match_stems(images: list[Path], image_dir: Path, labels: list[Path], label_dir: Path,
                one_folder: bool = False, pair_by: re.Pattern | None = None) -> StemMatch:
    """Pair ``images`` below ``image_dir`` with ``labels`` below ``label_dir`` by name (the
    module docstring). ``one_folder``: images and labels lie side by side, so a label needs
    a label suffix (and ``labels`` holds only such files). ``pair_by`` (ingest.pair_by), in
    two folders: pair by the scene id its first group takes out of both stems instead."""
    if pair_by is not None and not one_folder:
        return _match_ids(images, image_dir, labels, label_dir, pair_by)
    exact: dict[str, list[Path]] = defaultdict(list)
    loose: dict[str, list[Path]] = defaultdict(list)
    for label in labels:
        head, stem = _key(label, label_dir)
        if not one_folder:
            exact[head + stem].append(label)
        for base in (label_base(stem),
                     None if one_folder else without_folder_name(stem, label.parent.name)):
            if base is not None:
                loose[head + base].append(label)
    claims = _Claims()
    # exact names claim their labels first, so a loose match never takes them
    # (images/x.tif does not take masks/x_m.png from images/x_m.tif)
    for image in images:
        head, stem = _key(image, image_dir)
        claims.take(image, [p for p in _rasters_first(exact.get(head + stem, []))
                            if p != image][:1])
    exactly = set(claims.claimed)
    for image in images:
        if image in claims.chosen:
            continue
        head, stem = _key(image, image_dir)
        bases = (image_base(stem),
                 None if one_folder else without_folder_name(stem, image.parent.name))
        keys = [head + stem] + [head + base for base in bases if base is not None]
        claims.take(image, _rasters_first([p for p in dict.fromkeys(
            p for k in keys for p in exact.get(k, []) + loose.get(k, []))
            if p != image and p not in exactly]))
    return claims.result(images, labels)


def suffixed_labels(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Files of one folder as (images, labels): a label file whose stem ends in a label
    suffix is a label when the stem without it names another raster there (``a_mask.png``
    beside ``a.png`` or ``a_sat.jpg``; ``site_lab.png`` beside no ``site`` is an image), any
    other raster an image."""
    names = {name for p in files if is_raster(p)
             for name in (p.stem.lower(), image_base(p.stem.lower())) if name}
    labels = [p for p in files if is_label_file(p)
              and label_base(p.stem.lower()) in names - {p.stem.lower()}]
    taken = set(labels)
    return [p for p in files if is_raster(p) and p not in taken], labels


def match_in_folders(files: list[Path]) -> StemMatch:
    """Images and their labels side by side in the same folder, folder by folder."""
    by_folder: dict[Path, list[Path]] = defaultdict(list)
    for path in files:
        by_folder[path.parent].append(path)
    result = StemMatch([], [], [])
    for folder, inside in by_folder.items():
        images, labels = suffixed_labels(inside)
        if not labels or not images:
            result.images_left += images
            result.labels_left += labels
            continue
        found = match_stems(images, folder, labels, folder, one_folder=True)
        result.pairs += found.pairs
        result.images_left += found.images_left
        result.labels_left += found.labels_left
    return result


def held(paths: list[Path], what: str) -> str:
    """``paths`` as an error shows what a folder holds: how many, two examples."""
    if not paths:
        return f"no {what}"
    shown = ", ".join(p.name for p in paths[:2])
    return f"{counted(len(paths), what)} (e.g. {shown})"


_SEPARATORS = "_-. "


def _affixes(images: list[str], labels: list[str]) -> tuple[str, str, str, str]:
    """(image prefix, label prefix, image suffix, label suffix): what all stems of a side
    start and end with, less what both sides share next to the id (a separator stays with
    the affix: SN_ and buildings_, not SN and buildings)."""
    def tail(texts: list[str]) -> str:
        return os.path.commonprefix([t[::-1] for t in texts])[::-1]

    front_i, front_l = os.path.commonprefix(images), os.path.commonprefix(labels)
    shared = tail([front_i, front_l]).lstrip(_SEPARATORS)
    back_i, back_l = tail(images), tail(labels)
    common = os.path.commonprefix([back_i, back_l]).rstrip(_SEPARATORS)
    return (front_i[: len(front_i) - len(shared)], front_l[: len(front_l) - len(shared)],
            back_i[len(common):], back_l[len(common):])


def suggest_pair_by(images: list[Path], image_dir: Path, labels: list[Path],
                    label_dir: Path) -> str | None:
    """A ``pair_by`` that pairs at least two of ``images`` with ``labels`` whose names differ
    by a prefix or suffix no rule knows (SpaceNet's ``SN_x`` and ``buildings_x``), else None."""
    if len(images) < 2 or len(labels) < 2:
        return None
    front_i, front_l, back_i, back_l = _affixes([p.stem for p in images],
                                                [p.stem for p in labels])

    def either(a: str, b: str) -> str:
        return re.escape(a) if a == b else f"(?:{re.escape(a)}|{re.escape(b)})"

    if not (front_i or front_l or back_i or back_l):
        return None
    pattern = f"^{either(front_i, front_l)}(.+){either(back_i, back_l)}$"
    try:
        found = _match_ids(images, image_dir, labels, label_dir, re.compile(pattern))
    except DataError:  # two files with one id: not a pattern to advise
        return None
    return pattern if len(found.pairs) >= 2 else None


def pair_by_hint(images: list[Path], image_dir: Path, labels: list[Path],
                 label_dir: Path) -> str:
    """The advice to set ``pair_by`` (with ``suggest_pair_by``'s pattern), or nothing."""
    pattern = suggest_pair_by(images, image_dir, labels, label_dir)
    return (f"; their names differ by a prefix or suffix: set pair_by: {pattern!r} (its "
            f"first group is the scene id in both names)" if pattern else "")


def pair_by_problem(pair_by: re.Pattern, images: list[Path], image_dir: Path,
                    labels: list[Path], label_dir: Path) -> str:
    """Why ``pair_by`` paired none of ``images`` with ``labels``: of how many names on each
    side it takes a scene id, with names it does not match, or, when it matches all, ids of
    each side (they differ)."""
    image_ids = {p: _id_key(p, image_dir, pair_by) for p in images}
    label_ids = {p: _id_key(p, label_dir, pair_by) for p in labels}
    taken = (f"pair_by '{pair_by.pattern}' takes a scene id out of "
             f"{sum(k is not None for k in image_ids.values())} of {counted(len(images), 'image')}"
             f" and {sum(k is not None for k in label_ids.values())} of "
             f"{counted(len(labels), 'label')}")
    missed = [p.name for ids in (label_ids, image_ids) for p, k in ids.items() if k is None]
    if missed:
        return f"{taken}; it does not match {', '.join(missed[:3])}"
    ids = [next(iter(ids.values())) for ids in (image_ids, label_ids)]
    return f"{taken}, but no id is in both (e.g. {ids[0]!r} and {ids[1]!r})"
