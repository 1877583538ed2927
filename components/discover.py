"""Find image/label pairs in a folder tree, whatever layout a published dataset uses:

- an image folder and a label folder named by the options (``image_dir``/``mask_dir``,
  relative to the source: ``train/`` + ``label/``, ``JPEGImages/`` + ``SegmentationClass/``;
  one folder for both: ``train/`` of DeepGlobe); ``image_dir`` alone takes the label folder
  named beside it, or, with none, the image and label folders inside it
  (components/discover_image_dir.py);
- images and labels in one folder told by stem suffixes (``a_sat.jpg`` + ``a_mask.png``,
  ``a.jpg`` + ``a_m.png``, ``a_image.tif`` + ``a_mask.json``);
- image and label folders side by side at any depth, told by their names
  (components/discover_folders.py: ``images`` + ``masks``, ``images_png`` + ``masks_png``,
  ``top`` + ``gt``, ``train`` + ``train_labels``), every such pair of folders at once;
- an image beside a LabelMe ``<stem>.json``;
- side-by-side pairs: one JPEG/PNG holding the image (left half) and colour mask (right);
- one vector file (``vector_labels``) whose polygons label every image.

Files pair by name (components/discover_stems.py); a file never has two partners. Images
without a label and labels without an image are skipped and reported in one line. The rules
discovery reads by (which files it sees, what kind of file each is, which names say image or
label, where a source's scenes start, scene names) are in components/discover_rules.py.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import rasterio

from components.discover_folders import auto_pairs, unpaired_folders
from components.discover_image_dir import image_dir_pairs, source_folder
from components.discover_rules import (
    data_root,
    is_geojson,
    is_labelme,
    is_raster,
    looks_side_by_side,
    unique_names,
    visible_files,
)
from components.discover_vectors import check_one_for_all, per_image_message, vector_hint
from components.raster import DataError, is_vrt
from components.vector_info import VECTOR_SUFFIXES, LayerInfo
from components.vrt_sources import check_vrt_sources, open_source_raster
from components.wording import counted, listed

PairKind = Literal["raster", "labelme", "side_by_side", "vector"]


@dataclass(frozen=True)
class ScenePair:
    name: str
    image: Path
    label: Path  # mask raster, LabelMe JSON, or the image itself for side-by-side pairs
    kind: PairKind
    root: Path  # the source it was found in, the only files its VRTs may read

    def open_image(self) -> AbstractContextManager[rasterio.io.DatasetReader]:
        return open_source_raster(self.image, self.root)

    def open_label(self) -> AbstractContextManager[rasterio.io.DatasetReader]:
        """The label as a raster (a raster mask, or the image of a side-by-side pair)."""
        return open_source_raster(self.label, self.root)


def _label_kind(path: Path) -> PairKind:
    if path.suffix.lower() in VECTOR_SUFFIXES or is_geojson(path):
        return "vector"
    return "labelme" if path.suffix.lower() == ".json" else "raster"


def _labelme_pairs(files: list[Path], used: set[Path]) -> list[tuple[Path, Path, str]]:
    rasters = {(p.parent, p.stem.lower()): p for p in files if is_raster(p) and p not in used}
    pairs = []
    for path in files:
        if path in used or path.suffix.lower() != ".json":
            continue
        image = rasters.get((path.parent, path.stem.lower()))
        if image is not None and (is_labelme(path) or is_geojson(path)):
            pairs.append((image, path, image.stem))
    return pairs


def _vector_file(root: Path, files: list[Path], vector_labels: str) -> Path:
    """``vector_labels`` relative to the source root, or, when the source is one folder (an
    archive of a folder: scenes are found at any depth in it), relative to that folder."""
    for vector in (root / vector_labels, data_root(root) / vector_labels):
        if vector.is_file():
            return vector
    vectors = [p.relative_to(root).as_posix() for p in files
               if p.suffix.lower() in VECTOR_SUFFIXES]
    found = (f"its vector files: {listed(vectors)}" if vectors
             else "it holds no .geojson, .gpkg or .shp file")
    raise DataError(f"vector_labels {vector_labels!r}: no such file in the source ({found})")


@dataclass
class Discovery:
    pairs: list[ScenePair]
    unmatched: list[Path]  # images without a label and raster labels without an image
    # vector_labels' layer, checked from its header (components.ingest.find_pairs)
    layers: dict[Path, LayerInfo] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # warnings for the ingest to give

    def unmatched_line(self, root: Path) -> str | None:
        """The warning for the files left without a partner: how many, in which folders
        (relative to ``root``), and an example."""
        if not self.unmatched:
            return None
        folders = Counter(p.parent.relative_to(root).as_posix() for p in self.unmatched)
        where = ", ".join(f"{n} in {folder if folder != '.' else 'the top folder'}"
                          for folder, n in folders.most_common(3))
        if len(folders) > 3:
            where += f" and {counted(len(folders) - 3, 'more folder')}"
        files = counted(len(self.unmatched), "file without a partner was",
                        "files without a partner were")
        return (f"{files} skipped (images without a label, or labels without an image): "
                f"{where}; e.g. {self.unmatched[0].relative_to(root)}")


def _pair_by_unused(root: Path, pair_by: str, vector_labels: str | None,
                    found: list[tuple[Path, Path, str]]) -> str | None:
    """The warning when ``pair_by`` is set where it pairs nothing: one vector file labels every
    image, or images and labels lie in one folder (they pair by the name rules)."""
    if vector_labels is not None:
        return (f"pair_by '{pair_by}' is not used: vector_labels {vector_labels!r} labels "
                f"every image")
    side = [(i, lab) for i, lab, _ in found if i != lab and i.parent == lab.parent]
    if not side:
        return None
    image, label = (p.relative_to(root).as_posix() for p in side[0])
    return (f"pair_by '{pair_by}' is not used for {counted(len(side), 'image')} whose label "
            f"lies in its folder (e.g. {image} + {label}): those pair by the name rules; "
            f"pair_by pairs images and labels in two folders")


def discover_pairs(root: Path, mask_dir_names: list[str], side_by_side: bool | None = None,
                   image_dir: str | None = None, mask_dir: str | None = None,
                   vector_labels: str | None = None, pair_by: str | None = None) -> Discovery:
    """All scene pairs under ``root``. ``side_by_side=None`` detects side-by-side JPEG/PNG
    pairs when no other layout matches; ``True`` forces that layout. ``pair_by``: a regular
    expression whose first group is the scene id in an image's and its label's stem."""
    files = visible_files(root)
    pattern = re.compile(pair_by) if pair_by else None
    if not files:
        raise DataError(f"{root}: source is empty (no files)")
    for vrt in [p for p in files if is_raster(p) and is_vrt(p)]:  # by their bytes
        check_vrt_sources(vrt, root)
    unlabeled: list[Path] = []
    notes: list[str] = []  # warnings about what discovery read
    if vector_labels is not None:
        vector = _vector_file(root, files, vector_labels)
        base = source_folder(root, image_dir, "image_dir") if image_dir else root
        found = [(p, vector, p.stem) for p in files if is_raster(p) and p.is_relative_to(base)]
        if note := check_one_for_all(root, files, vector, len(found), pattern):
            notes.append(note)
        kinds: list[PairKind] = ["vector"] * len(found)
    elif image_dir is not None:
        found = image_dir_pairs(root, files, image_dir, mask_dir, mask_dir_names, unlabeled,
                                pattern)
        kinds = [_label_kind(label) for _, label, _ in found]
    elif mask_dir is not None:
        raise DataError("mask_dir is set without image_dir; set both (relative to the source)")
    elif side_by_side:
        found = [(p, p, p.stem) for p in files if is_raster(p)]
        kinds = ["side_by_side"] * len(found)
    else:
        found = auto_pairs(root, files, mask_dir_names, pattern)
        found += _labelme_pairs(files, {p for pair in found for p in pair[:2]})
        kinds = [_label_kind(label) for _, label, _ in found]
        used = {p for pair in found for p in pair[:2]}
        unlabeled += [p for p in files if is_raster(p) and p not in used]
        if not found and side_by_side is None:
            rasters = [p for p in files if is_raster(p)]
            if rasters and all(looks_side_by_side(p, root) for p in rasters):
                found = [(p, p, p.stem) for p in rasters]
                kinds = ["side_by_side"] * len(found)
    if not found:
        if per_image := per_image_message(root, files, pattern):
            raise DataError(f"{root}: {per_image}")
        hint = vector_hint(root, files)
        if folders := unpaired_folders(root, files, mask_dir_names, pattern):
            raise DataError(f"{root}: {folders}{hint}")
        seen = sorted({p.suffix.lower() or p.name for p in files})
        raise DataError(
            f"{root}: unknown format: no image/label pairs found among {len(files)} files "
            f"(extensions {', '.join(seen)}); expected image and label folders side by side "
            f"(images + masks, images_png + masks_png, top + gt, train + train_labels: "
            f"folder names with an image or a label word, or in mask_dir_names), images and "
            f"labels in one folder told by stem suffixes (a_sat.jpg + a_mask.png), LabelMe "
            f"JSON beside images, side-by-side image|mask JPEGs, or set image_dir and "
            f"mask_dir{hint}")
    if pair_by and (note := _pair_by_unused(root, pair_by, vector_labels, found)):
        notes.append(note)
    names = unique_names(found, root)
    pairs = [ScenePair(name, image, label, kind, root)
             for (image, label, _), name, kind in zip(found, names, kinds, strict=True)]
    paired = {q.image for q in pairs}
    return Discovery(pairs, [p for p in unlabeled if p not in paired], notes=notes)
