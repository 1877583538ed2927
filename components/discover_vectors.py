"""Vector label files published one per image (SpaceNet's
``MUL/MUL_AOI_2_Vegas_imgN.tif`` + ``geojson/buildings/buildings_AOI_2_Vegas_imgN.geojson``),
told from one file whose polygons label every image (``ingest.vector_labels``): they pair
with images by name, as raster labels do. Scene discovery (components/discover.py) never
advises one of them as ``vector_labels``, and refuses one named so: its polygons would label
every scene and the other files would be left out, silently."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from components.discover_rules import is_raster
from components.discover_stems import match_stems, suggest_pair_by
from components.raster import DataError
from components.vector_info import VECTOR_SUFFIXES
from components.wording import listed

#: Vector files that pair with images by name before they look like per-image labels.
MIN_PAIRED = 2


@dataclass(frozen=True)
class PerImageVectors:
    """Vector files of one folder that pair, by name, with the images of another."""
    pairs: list[tuple[Path, Path]]  # (image, vector file)
    image_dir: str  # relative to the source
    label_dir: str
    pair_by: str | None  # the pattern they pair by, when no built-in rule pairs them

    @property
    def vectors(self) -> list[Path]:
        return [vector for _, vector in self.pairs]

    def advice(self) -> str:
        """The options that read them as per-image labels."""
        text = f"set image_dir: {self.image_dir} and mask_dir: {self.label_dir}"
        if self.pair_by:
            text += (f" and pair_by: {self.pair_by!r} (its first group is the scene id in "
                     f"both names)")
        return text


def _by_folder(paths: list[Path]) -> dict[Path, list[Path]]:
    folders: dict[Path, list[Path]] = defaultdict(list)
    for path in paths:
        folders[path.parent].append(path)
    return folders


def per_image_vectors(root: Path, files: list[Path],
                      pair_by: re.Pattern | None = None) -> PerImageVectors | None:
    """The folder of vector files that pair with most images of one folder (at least
    ``MIN_PAIRED``), by the name rules or ``pair_by``, else by a ``pair_by`` their names
    suggest; None when no vector files pair so."""
    vectors = _by_folder([p for p in files if p.suffix.lower() in VECTOR_SUFFIXES])
    rasters = _by_folder([p for p in files if is_raster(p)])
    best: PerImageVectors | None = None
    for label_dir, labels in vectors.items():
        if len(labels) < MIN_PAIRED:
            continue
        for image_dir, images in rasters.items():
            if image_dir == label_dir:
                continue
            try:
                pairs = match_stems(images, image_dir, labels, label_dir, pair_by=pair_by).pairs
                pattern = None
                if not pairs and pair_by is None:
                    pattern = suggest_pair_by(images, image_dir, labels, label_dir)
                    pairs = match_stems(images, image_dir, labels, label_dir,
                                        pair_by=re.compile(pattern)).pairs if pattern else []
            except DataError:  # a file fitting two: not a pairing to advise
                continue
            if len(pairs) >= MIN_PAIRED and (best is None or len(pairs) > len(best.pairs)):
                best = PerImageVectors(pairs, image_dir.relative_to(root).as_posix(),
                                       label_dir.relative_to(root).as_posix(), pattern)
    return best


def check_one_for_all(root: Path, files: list[Path], vector: Path, images: int,
                      pair_by: re.Pattern | None) -> str | None:
    """``vector_labels`` names ``vector``: an error when it is one of the files that pair
    with images by name (its polygons would label all ``images``, the others none); the
    warning to give when other files pair so (a file of all labels beside per-image ones)."""
    found = per_image_vectors(root, files, pair_by)
    if found is None:
        return None
    example = found.vectors[0].relative_to(root).as_posix()
    name = vector.relative_to(root).as_posix()
    if vector not in found.vectors:
        return (f"vector_labels {name!r} labels every image, but {len(found.vectors)} other "
                f"vector files look like labels of one image each (e.g. {example}), and are "
                f"not read; if they are the labels, {found.advice()} instead")
    image = next(image for image, label in found.pairs if label == vector)
    raise DataError(
        f"vector_labels {name!r} would label all {images} images, but it and "
        f"{len(found.vectors) - 1} more vector files look like labels of one image each "
        f"({vector.name} pairs with {image.name} by name): {found.advice()} instead")


def per_image_message(root: Path, files: list[Path], pair_by: re.Pattern | None) -> str | None:
    """For the error when nothing pairs: the vector files that look like labels of one image
    each, and the options that read them so; None when there are none."""
    found = per_image_vectors(root, files, pair_by)
    if found is None:
        return None
    example = found.vectors[0].relative_to(root).as_posix()
    return (f"no image/label pairs found by the layout rules, but {len(found.vectors)} vector "
            f"files look like labels of one image each (e.g. {example}): {found.advice()}")


def vector_hint(root: Path, files: list[Path]) -> str:
    """For the error when nothing pairs, after ``per_image_message`` found nothing: the vector
    file to name in ``vector_labels``."""
    vectors = [p.relative_to(root).as_posix() for p in files
               if p.suffix.lower() in VECTOR_SUFFIXES]
    if len(vectors) == 1:
        return f"; the source holds vector labels ({vectors[0]}): set vector_labels: {vectors[0]}"
    if vectors:
        return (f"; the source holds vector files ({listed(vectors)}): set vector_labels to "
                f"the one whose polygons label every image")
    return ""
