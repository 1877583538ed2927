"""Find image/label pairs in a folder tree, whatever layout a published dataset uses:

- an image folder and a label folder named by the options (``image_dir``/``mask_dir``,
  relative to the source: ``train/`` + ``label/``, ``JPEGImages/`` + ``SegmentationClass/``);
- ``<name>_image.<ext>`` beside ``<name>_mask.<ext>`` (or a LabelMe or vector ``_mask``);
- an ``images/`` folder at any depth with a sibling mask folder (``masks``, ``labels``,
  ``gt`` or a configured name);
- an image beside a LabelMe ``<stem>.json``;
- side-by-side pairs: one JPEG/PNG holding the image (left half) and colour mask (right);
- one vector file (``vector_labels``) whose polygons label every image.

Folder layouts match by relative path without extension (``a.jpg`` <-> ``a.png``), then by
stem without a usual suffix (``a_sat.jpg`` <-> ``a_mask.png``). Images without a label and
labels without an image are skipped and reported. The rules discovery reads by (which files
it sees, what kind of file each is, where a source's scenes start, scene names) are in
components/discover_rules.py.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import rasterio

from components.discover_rules import (
    data_root,
    is_geojson,
    is_label_file,
    is_labelme,
    is_raster,
    looks_side_by_side,
    unique_names,
    visible_files,
)
from components.raster import DataError, is_vrt
from components.vector_info import VECTOR_SUFFIXES, LayerInfo
from components.vrt_sources import check_vrt_sources, open_source_raster

PairKind = Literal["raster", "labelme", "side_by_side", "vector"]
# Suffixes that published datasets put on one side of a pair only.
IMAGE_STEM_SUFFIXES = ("_image", "_img", "_sat", "_rgb", "_leftimg8bit")
LABEL_STEM_SUFFIXES = ("_mask", "_masks", "_label", "_labels", "_gt", "_seg", "_lab")


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


def _strip(stem: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def _suffix_pairs(files: list[Path]) -> list[tuple[Path, Path, str]]:
    by_stem = {(p.parent, p.stem.lower()): p for p in files if is_label_file(p)}
    pairs = []
    for path in files:
        if not (is_raster(path) and path.stem.lower().endswith("_image")):
            continue
        base = path.stem[: -len("_image")]
        label = by_stem.get((path.parent, f"{base}_mask".lower()))
        if label is None:
            raise DataError(f"{path}: no matching {base}_mask file beside it")
        pairs.append((path, label, base))
    return pairs


def _label_index(mask_dir: Path) -> dict[str, Path]:
    labels: dict[str, Path] = {}
    for p in sorted(mask_dir.rglob("*")):
        if p.is_file() and is_label_file(p) and not p.name.startswith("."):
            key = p.relative_to(mask_dir).with_suffix("").as_posix().lower()
            # A raster mask wins over a JSON sidecar of the same stem.
            if key not in labels or is_raster(p):
                labels[key] = p
    return labels


def _match_folder(image_dir: Path, mask_dir: Path, images: list[Path],
                  unlabeled: list[Path]) -> list[tuple[Path, Path, str]]:
    """Pair images under ``image_dir`` with labels under ``mask_dir``: same relative path
    without extension, else the same path once usual image/label suffixes are dropped."""
    labels = _label_index(mask_dir)
    loose = {}
    for key, path in labels.items():
        loose.setdefault(_strip(key, LABEL_STEM_SUFFIXES), path)
    pairs, used = [], set()
    for image in images:
        key = image.relative_to(image_dir).with_suffix("").as_posix().lower()
        label = labels.get(key) or loose.get(_strip(key, IMAGE_STEM_SUFFIXES)) \
            or loose.get(_strip(key, LABEL_STEM_SUFFIXES))
        if label is None or label == image:
            unlabeled.append(image)
            continue
        used.add(label)
        pairs.append((image, label, image.stem))
    unlabeled += [p for p in labels.values() if p not in used and is_raster(p)]
    return pairs


def _folder_pairs(root: Path, files: list[Path], mask_dir_names: list[str],
                  unlabeled: list[Path]) -> list[tuple[Path, Path, str]]:
    wanted = [n.lower() for n in mask_dir_names]
    pairs = []
    image_dirs = sorted({d for p in files for d in p.relative_to(root).parents
                         if d.name.lower() == "images"})
    for rel_dir in image_dirs:
        image_dir = root / rel_dir
        siblings = {d.name.lower(): d for d in image_dir.parent.iterdir() if d.is_dir()}
        mask_dir = next((siblings[n] for n in wanted if n in siblings), None)
        if mask_dir is None:
            continue
        images = [p for p in files if is_raster(p) and p.is_relative_to(image_dir)]
        pairs += _match_folder(image_dir, mask_dir, images, unlabeled)
    return pairs


def _named_dir(root: Path, rel: str, option: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_dir():
        top = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataError(f"{option} {rel!r}: no such folder in the source (its folders: "
                        f"{', '.join(top) or 'none'})")
    return root / rel


def _explicit_pairs(root: Path, files: list[Path], image_dir: str, mask_dir: str | None,
                    mask_dir_names: list[str],
                    unlabeled: list[Path]) -> list[tuple[Path, Path, str]]:
    images_path = _named_dir(root, image_dir, "image_dir")
    if mask_dir is not None:
        masks_path = _named_dir(root, mask_dir, "mask_dir")
    else:
        siblings = {d.name.lower(): d for d in images_path.parent.iterdir() if d.is_dir()}
        masks_path = next((siblings[n.lower()] for n in mask_dir_names
                           if n.lower() in siblings), None)
        if masks_path is None:
            raise DataError(f"image_dir {image_dir!r}: no sibling label folder named "
                            f"{', '.join(mask_dir_names)}; set mask_dir")
    images = [p for p in files if is_raster(p) and p.is_relative_to(images_path)
              and not p.is_relative_to(masks_path)]
    return _match_folder(images_path, masks_path, images, unlabeled)


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


def _vector_files(root: Path, files: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in files
            if p.suffix.lower() in VECTOR_SUFFIXES]


def _listed(paths: list[str], most: int = 5) -> str:
    more = f" and {len(paths) - most} more" if len(paths) > most else ""
    return ", ".join(paths[:most]) + more


def _vector_file(root: Path, files: list[Path], vector_labels: str) -> Path:
    """``vector_labels`` relative to the source root, or, when the source is one folder (an
    archive of a folder: scenes are found at any depth in it), relative to that folder."""
    for vector in (root / vector_labels, data_root(root) / vector_labels):
        if vector.is_file():
            return vector
    vectors = _vector_files(root, files)
    found = (f"its vector files: {_listed(vectors)}" if vectors
             else "it holds no .geojson, .gpkg or .shp file")
    raise DataError(f"vector_labels {vector_labels!r}: no such file in the source ({found})")


@dataclass
class Discovery:
    pairs: list[ScenePair]
    unmatched: list[Path]  # images without a label and raster labels without an image
    # vector_labels' layer, checked from its header (components.ingest.find_pairs)
    layers: dict[Path, LayerInfo] = field(default_factory=dict)


def discover_pairs(root: Path, mask_dir_names: list[str], side_by_side: bool | None = None,
                   image_dir: str | None = None, mask_dir: str | None = None,
                   vector_labels: str | None = None) -> Discovery:
    """All scene pairs under ``root``. ``side_by_side=None`` detects side-by-side JPEG/PNG
    pairs when no other layout matches; ``True`` forces that layout."""
    files = visible_files(root)
    if not files:
        raise DataError(f"{root}: source is empty (no files)")
    for vrt in [p for p in files if is_raster(p) and is_vrt(p)]:  # by their bytes
        check_vrt_sources(vrt, root)
    unlabeled: list[Path] = []
    if vector_labels is not None:
        vector = _vector_file(root, files, vector_labels)
        base = _named_dir(root, image_dir, "image_dir") if image_dir else root
        found = [(p, vector, p.stem) for p in files if is_raster(p) and p.is_relative_to(base)]
        kinds: list[PairKind] = ["vector"] * len(found)
    elif image_dir is not None:
        found = _explicit_pairs(root, files, image_dir, mask_dir, mask_dir_names, unlabeled)
        kinds = [_label_kind(label) for _, label, _ in found]
    elif mask_dir is not None:
        raise DataError("mask_dir is set without image_dir; set both (relative to the source)")
    elif side_by_side:
        found = [(p, p, p.stem) for p in files if is_raster(p)]
        kinds = ["side_by_side"] * len(found)
    else:
        found = _suffix_pairs(files)
        paired = {p for pair in found for p in pair[:2]}
        found += [pair for pair in _folder_pairs(root, files, mask_dir_names, unlabeled)
                  if pair[0] not in paired and pair[1] not in paired]
        used = {p for pair in found for p in pair[:2]}
        found += _labelme_pairs(files, used)
        kinds = [_label_kind(label) for _, label, _ in found]
        if not found and side_by_side is None:
            rasters = [p for p in files if is_raster(p)]
            if rasters and all(looks_side_by_side(p, root) for p in rasters):
                found = [(p, p, p.stem) for p in rasters]
                kinds = ["side_by_side"] * len(found)
    if not found:
        seen = sorted({p.suffix.lower() or p.name for p in files})
        vectors = _vector_files(root, files)
        hint = (f"; the source holds vector labels ({_listed(vectors)}): set vector_labels: "
                f"{vectors[0]}" if vectors else "")
        raise DataError(
            f"{root}: unknown format: no image/label pairs found among {len(files)} files "
            f"(extensions {', '.join(seen)}); expected <name>_image/<name>_mask pairs, an "
            f"images/ folder with a sibling {'/'.join(mask_dir_names)} folder, LabelMe JSON "
            f"beside images, side-by-side image|mask JPEGs, or set image_dir and mask_dir"
            f"{hint}")
    names = unique_names(found, root)
    pairs = [ScenePair(name, image, label, kind, root)
             for (image, label, _), name, kind in zip(found, names, kinds, strict=True)]
    return Discovery(pairs, [p for p in unlabeled if p not in {q.image for q in pairs}])
