"""Pairing images with labels by name, for scene discovery (components/discover.py).

Across two folders an image and a label pair by their path below their folder without the
extension (``a.jpg`` <-> ``a.png``, ``x.tiff`` <-> ``x.tif``), else once a known image
suffix is dropped from the image's stem and a known label suffix from the label's
(``a_RGBIR`` <-> ``a_label_noBoundary``; the suffixes are in components/discover_rules.py).
In one folder only the suffixes tell a label from an image (``a_sat.jpg`` <-> ``a_mask.png``,
``a.jpg`` <-> ``a_m.png``). A file never gets two partners: an image that two labels fit,
or a label that two images fit, is an error naming the three files."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from components.discover_rules import image_base, is_label_file, is_raster, label_base
from components.raster import DataError


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


def match_stems(images: list[Path], image_dir: Path, labels: list[Path], label_dir: Path,
                one_folder: bool = False) -> StemMatch:
    """Pair ``images`` below ``image_dir`` with ``labels`` below ``label_dir`` by name (the
    module docstring). ``one_folder``: images and labels lie side by side, so a label needs
    a label suffix (and ``labels`` holds only such files)."""
    exact: dict[str, list[Path]] = defaultdict(list)
    loose: dict[str, list[Path]] = defaultdict(list)
    for label in labels:
        head, stem = _key(label, label_dir)
        if not one_folder:
            exact[head + stem].append(label)
        if (base := label_base(stem)) is not None:
            loose[head + base].append(label)
    claimed: dict[Path, list[Path]] = defaultdict(list)
    chosen: dict[Path, Path] = {}
    # exact names claim their labels first, so a loose match never takes them
    # (images/x.tif does not take masks/x_m.png from images/x_m.tif)
    for image in images:
        head, stem = _key(image, image_dir)
        found = [p for p in _rasters_first(exact.get(head + stem, [])) if p != image]
        if found:
            claimed[found[0]].append(image)
            chosen[image] = found[0]
    exactly = set(claimed)
    for image in images:
        if image in chosen:
            continue
        head, stem = _key(image, image_dir)
        base = image_base(stem)
        keys = [head + stem] + ([head + base] if base is not None else [])
        found = _rasters_first([p for p in dict.fromkeys(
            p for k in keys for p in exact.get(k, []) + loose.get(k, []))
            if p != image and p not in exactly])
        if len(found) > 1:
            raise _ambiguous(image, found, "labels")
        if found:
            claimed[found[0]].append(image)
            chosen[image] = found[0]
    for label, fits in claimed.items():
        if len(fits) > 1:
            raise _ambiguous(label, fits, "images")
    pairs = [(image, chosen[image]) for image in images if image in chosen]
    return StemMatch(pairs, [p for p in images if p not in chosen],
                     [p for p in labels if p not in claimed])


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
