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
labels without an image are skipped and reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from components.raster import DataError, open_raster
from components.vector_info import VECTOR_SUFFIXES, LayerInfo

RASTER_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".bmp"}
LOSSY_SUFFIXES = {".jpg", ".jpeg", ".jp2"}
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


def never_read(relative: Path) -> bool:
    """A path below the source root that discovery skips: hidden files and folders (such as
    a .segpipe workdir) and macOS archive leftovers."""
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def _visible_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not never_read(p.relative_to(root)))


def _is_raster(path: Path) -> bool:
    return path.suffix.lower() in RASTER_SUFFIXES


def is_labelme(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("shapes"), list)


def is_geojson(path: Path) -> bool:
    """A ``.json`` GeoJSON FeatureCollection (GeoJSON files are often saved as .json)."""
    if path.suffix.lower() != ".json":
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", "replace")
    except OSError:
        return False
    return '"FeatureCollection"' in head and '"shapes"' not in head


def _is_label_file(path: Path) -> bool:
    suffix = path.suffix.lower()
    return _is_raster(path) or suffix == ".json" or suffix in VECTOR_SUFFIXES


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
    by_stem = {(p.parent, p.stem.lower()): p for p in files if _is_label_file(p)}
    pairs = []
    for path in files:
        if not (_is_raster(path) and path.stem.lower().endswith("_image")):
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
        if p.is_file() and _is_label_file(p) and not p.name.startswith("."):
            key = p.relative_to(mask_dir).with_suffix("").as_posix().lower()
            # A raster mask wins over a JSON sidecar of the same stem.
            if key not in labels or _is_raster(p):
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
    unlabeled += [p for p in labels.values() if p not in used and _is_raster(p)]
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
        images = [p for p in files if _is_raster(p) and p.is_relative_to(image_dir)]
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
    images = [p for p in files if _is_raster(p) and p.is_relative_to(images_path)
              and not p.is_relative_to(masks_path)]
    return _match_folder(images_path, masks_path, images, unlabeled)


def _labelme_pairs(files: list[Path], used: set[Path]) -> list[tuple[Path, Path, str]]:
    rasters = {(p.parent, p.stem.lower()): p for p in files if _is_raster(p) and p not in used}
    pairs = []
    for path in files:
        if path in used or path.suffix.lower() != ".json":
            continue
        image = rasters.get((path.parent, path.stem.lower()))
        if image is not None and (is_labelme(path) or is_geojson(path)):
            pairs.append((image, path, image.stem))
    return pairs


def _looks_side_by_side(path: Path) -> bool:
    with open_raster(path) as src:
        return src.width == 2 * src.height and src.count >= 3


def _unique_names(pairs: list[tuple[Path, Path, str]], root: Path) -> list[str]:
    """Stems when unique, else names from the relative path; always filesystem-safe."""
    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "scene"

    stems = [safe(base) for _, _, base in pairs]
    names = []
    for (image, _, base), stem in zip(pairs, stems, strict=True):
        if stems.count(stem) == 1:
            names.append(stem)
            continue
        rel = image.relative_to(root).with_suffix("")
        parts = [p for p in rel.parts[:-1] if p.lower() != "images"] + [base]
        names.append(safe("__".join(parts)))
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}__{seen[name]}")
    return unique


def _vector_files(root: Path, files: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in files
            if p.suffix.lower() in VECTOR_SUFFIXES]


def _listed(paths: list[str], most: int = 5) -> str:
    more = f" and {len(paths) - most} more" if len(paths) > most else ""
    return ", ".join(paths[:most]) + more


def data_root(root: Path) -> Path:
    """The folder scenes are found under: the source root, or its one folder when it holds
    nothing else visible (an archive of a folder). Scene paths are recorded relative to it,
    so the same data from a folder, an archive of it or S3 gets the same dataset digest."""
    top = [p for p in root.iterdir() if not never_read(p.relative_to(root))]
    return top[0] if len(top) == 1 and top[0].is_dir() else root


def _vector_file(root: Path, files: list[Path], vector_labels: str) -> Path:
    """``vector_labels`` relative to the source root, or, when the source is one folder (an
    archive of a folder: scenes are found at any depth in it), relative to that folder."""
    vector = root / vector_labels
    if vector.is_file():
        return vector
    top = [p for p in root.iterdir() if not never_read(p.relative_to(root))]
    if len(top) == 1 and top[0].is_dir() and (top[0] / vector_labels).is_file():
        return top[0] / vector_labels
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
    files = _visible_files(root)
    if not files:
        raise DataError(f"{root}: source is empty (no files)")
    unlabeled: list[Path] = []
    if vector_labels is not None:
        vector = _vector_file(root, files, vector_labels)
        base = _named_dir(root, image_dir, "image_dir") if image_dir else root
        found = [(p, vector, p.stem) for p in files if _is_raster(p) and p.is_relative_to(base)]
        kinds: list[PairKind] = ["vector"] * len(found)
    elif image_dir is not None:
        found = _explicit_pairs(root, files, image_dir, mask_dir, mask_dir_names, unlabeled)
        kinds = [_label_kind(label) for _, label, _ in found]
    elif mask_dir is not None:
        raise DataError("mask_dir is set without image_dir; set both (relative to the source)")
    elif side_by_side:
        found = [(p, p, p.stem) for p in files if _is_raster(p)]
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
            rasters = [p for p in files if _is_raster(p)]
            if rasters and all(_looks_side_by_side(p) for p in rasters):
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
    names = _unique_names(found, root)
    pairs = [ScenePair(name, image, label, kind)
             for (image, label, _), name, kind in zip(found, names, kinds, strict=True)]
    return Discovery(pairs, [p for p in unlabeled if p not in {q.image for q in pairs}])
