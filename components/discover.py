"""Find image/label pairs in a folder tree, whatever layout a published dataset uses:

- ``<name>_image.<ext>`` beside ``<name>_mask.<ext>`` (or ``<name>_mask.json``, LabelMe);
- an ``images/`` folder at any depth with a sibling mask folder (``masks``, ``labels``,
  ``gt`` or a configured name), matched by relative path without extension;
- an image beside a LabelMe ``<stem>.json``;
- side-by-side pairs: one JPEG/PNG holding the image (left half) and colour mask (right).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.raster import DataError, open_raster

RASTER_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".bmp"}
LOSSY_SUFFIXES = {".jpg", ".jpeg", ".jp2"}
PairKind = Literal["raster", "labelme", "side_by_side"]


@dataclass(frozen=True)
class ScenePair:
    name: str
    image: Path
    label: Path  # mask raster, LabelMe JSON, or the image itself for side-by-side pairs
    kind: PairKind


def _visible_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") or part == "__MACOSX"
                              for part in p.relative_to(root).parts))


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


def _label_kind(path: Path) -> PairKind:
    return "labelme" if path.suffix.lower() == ".json" else "raster"


def _suffix_pairs(files: list[Path]) -> list[tuple[Path, Path, str]]:
    by_stem = {(p.parent, p.stem.lower()): p for p in files
               if _is_raster(p) or p.suffix.lower() == ".json"}
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


def _folder_pairs(root: Path, files: list[Path],
                  mask_dir_names: list[str]) -> list[tuple[Path, Path, str]]:
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
        labels = {}
        for p in mask_dir.rglob("*"):
            if p.is_file() and (_is_raster(p) or p.suffix.lower() == ".json"):
                key = p.relative_to(mask_dir).with_suffix("").as_posix().lower()
                # A raster mask wins over a JSON sidecar of the same stem.
                if key not in labels or _is_raster(p):
                    labels[key] = p
        for image in files:
            if not _is_raster(image) or not image.is_relative_to(image_dir):
                continue
            key = image.relative_to(image_dir).with_suffix("").as_posix().lower()
            if key not in labels:
                raise DataError(f"{image}: no matching label in {mask_dir}")
            pairs.append((image, labels[key], image.stem))
    return pairs


def _labelme_pairs(files: list[Path], used: set[Path]) -> list[tuple[Path, Path, str]]:
    rasters = {(p.parent, p.stem.lower()): p for p in files if _is_raster(p) and p not in used}
    pairs = []
    for path in files:
        if path in used or path.suffix.lower() != ".json":
            continue
        image = rasters.get((path.parent, path.stem.lower()))
        if image is not None and is_labelme(path):
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


def discover_pairs(root: Path, mask_dir_names: list[str],
                   side_by_side: bool | None = None) -> list[ScenePair]:
    """All scene pairs under ``root``. ``side_by_side=None`` detects side-by-side JPEG/PNG
    pairs when no other layout matches; ``True`` forces that layout."""
    files = _visible_files(root)
    if not files:
        raise DataError(f"{root}: source is empty (no files)")
    if side_by_side:
        found = [(p, p, p.stem) for p in files if _is_raster(p)]
        kinds: list[PairKind] = ["side_by_side"] * len(found)
    else:
        found = _suffix_pairs(files)
        paired = {p for pair in found for p in pair[:2]}
        found += [pair for pair in _folder_pairs(root, files, mask_dir_names)
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
        raise DataError(
            f"{root}: unknown format: no image/label pairs found among {len(files)} files "
            f"(extensions {', '.join(seen)}); expected <name>_image/<name>_mask pairs, an "
            f"images/ folder with a sibling {'/'.join(mask_dir_names)} folder, LabelMe JSON "
            "beside images, or side-by-side image|mask JPEGs")
    names = _unique_names(found, root)
    return [ScenePair(name, image, label, kind)
            for (image, label, _), name, kind in zip(found, names, kinds, strict=True)]
