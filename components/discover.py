"""Find image/label pairs in a folder tree, whatever layout a published dataset uses:

- an image folder and a label folder named by the options (``image_dir``/``mask_dir``,
  relative to the source: ``train/`` + ``label/``, ``JPEGImages/`` + ``SegmentationClass/``;
  one folder for both: ``train/`` of DeepGlobe); ``image_dir`` alone takes the label folder
  named beside it, or, with none, the image and label folders inside it;
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

from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import rasterio

from components.discover_folders import (
    check_no_copies,
    folder_pairs,
    folder_rank,
    label_folders_beside,
)
from components.discover_rules import (
    IMAGE_STEM_SUFFIXES,
    LABEL_STEM_SUFFIXES,
    data_root,
    image_base,
    in_label_folder,
    is_geojson,
    is_label_file,
    is_labelme,
    is_raster,
    looks_side_by_side,
    unique_names,
    visible_files,
)
from components.discover_stems import StemMatch, match_in_folders, match_stems
from components.raster import DataError, is_vrt
from components.vector_info import VECTOR_SUFFIXES, LayerInfo
from components.vrt_sources import check_vrt_sources, open_source_raster
from components.wording import counted

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


def _scene_base(image: Path) -> str:
    """A same-folder pair's scene name: the image's stem without its image suffix."""
    base = image_base(image.stem.lower())
    return image.stem[: len(base)] if base is not None else image.stem


def _auto_pairs(root: Path, files: list[Path],
                label_dir_names: list[str]) -> list[tuple[Path, Path, str]]:
    """Every pair of image and label folders (components/discover_folders.py), then images
    and labels side by side in one folder (by suffix) among the files left: not in a folder
    that is one side of a pair of folders (there ``a_mask.tif`` beside ``a.tif`` is a
    valid-data mask, not its label), and never an image in a label folder."""
    across, sides = folder_pairs(root, files, label_dir_names)
    rest = [p for p in files
            if not any(p.is_relative_to(root / side) for side in sides)
            and not in_label_folder(p.relative_to(root), label_dir_names)]
    in_folders = match_in_folders(rest).pairs
    check_no_copies(root, in_folders + across)
    return ([(image, label, _scene_base(image)) for image, label in in_folders]
            + [(image, label, image.stem) for image, label in across])


def _named_dir(root: Path, rel: str, option: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_dir():
        top = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataError(f"{option} {rel!r}: no such folder in the source (its folders: "
                        f"{', '.join(top) or 'none'})")
    return root / rel


def _examples(paths: list[Path], what: str) -> str:
    if not paths:
        return f"no {what}"
    shown = ", ".join(p.name for p in paths[:2])
    return f"{counted(len(paths), what)} (e.g. {shown})"


def _none_pair(image_dir: str, label_folder: str, match: StemMatch,
               one_folder: bool) -> DataError:
    """Named folders whose files do not pair: what each holds, and the rule they missed
    (``label_folder``: mask_dir as the options name it, or the folder found beside)."""
    images, labels = _examples(match.images_left, "image"), _examples(match.labels_left,
                                                                         "label")
    if one_folder:
        held = (f"image_dir and mask_dir {image_dir!r} hold {images} and {labels} (in one "
                f"folder a label's stem ends in a label suffix)")
    else:
        held = f"image_dir {image_dir!r} holds {images}, and {label_folder} {labels}"
    return DataError(
        f"{held}, but none pair: an image and its label pair by their path in their folder "
        f"without the extension, or by their stems without a suffix (images: "
        f"{' '.join(IMAGE_STEM_SUFFIXES)}; labels: {' '.join(LABEL_STEM_SUFFIXES)}, any case)")


def _beside(root: Path, files: list[Path], images_path: Path, image_dir: str,
            label_dir_names: list[str]) -> tuple[str, StemMatch]:
    """``image_dir``'s label folder, found beside it by name, and the pairs it gives."""
    images = [p for p in files if is_raster(p) and p.is_relative_to(images_path)]
    tried = []
    for folder in label_folders_beside(images_path, label_dir_names):
        labels = [p for p in files if is_label_file(p) and p.is_relative_to(folder)]
        if labels:
            rel = folder.relative_to(root).as_posix()
            tried.append((rel, match_stems(images, images_path, labels, folder)))
    fitting = [(rel, match) for rel, match in tried if match.pairs]
    ranks = [folder_rank(images_path.name, Path(rel).name, label_dir_names)
             for rel, _ in fitting]
    fitting = [fit for fit, rank in zip(fitting, ranks, strict=True) if rank == min(ranks)]
    if len(fitting) > 1:
        raise DataError(f"image_dir {image_dir!r}: its images have labels in "
                        f"{' and in '.join(rel for rel, _ in fitting)}; choose one with "
                        f"mask_dir")
    if fitting or tried:
        return (fitting or tried)[0]
    raise DataError(f"image_dir {image_dir!r}: no label folder beside it (a folder named "
                    f"with a label word, e.g. masks, labels, gt, annotations, or "
                    f"{images_path.name}_labels, or in mask_dir_names) and no image and "
                    f"label folders inside it; set mask_dir")


def _explicit_pairs(root: Path, files: list[Path], image_dir: str, mask_dir: str | None,
                    label_dir_names: list[str],
                    unlabeled: list[Path]) -> list[tuple[Path, Path, str]]:
    images_path = _named_dir(root, image_dir, "image_dir")
    inside = [p for p in files if p.is_relative_to(images_path)]
    if mask_dir is None and not label_folders_beside(images_path, label_dir_names):
        # a folder of image and label folders (one copy of a dataset, one of its splits)
        found = _auto_pairs(root, inside, label_dir_names)
        if found:
            used = {p for pair in found for p in pair[:2]}
            unlabeled += [p for p in inside if is_raster(p) and p not in used]
            return found
    one_folder, label_folder = False, f"mask_dir {mask_dir!r}"
    if mask_dir is None:
        beside, match = _beside(root, files, images_path, image_dir, label_dir_names)
        label_folder = f"the label folder beside it, {beside!r},"
    elif (masks_path := _named_dir(root, mask_dir, "mask_dir")).resolve() == \
            images_path.resolve():
        one_folder, match = True, match_in_folders(inside)
    else:
        images = [p for p in inside if is_raster(p) and not p.is_relative_to(masks_path)]
        labels = [p for p in files if is_label_file(p) and p.is_relative_to(masks_path)]
        match = match_stems(images, images_path, labels, masks_path)
    if not match.pairs:
        raise _none_pair(image_dir, label_folder, match, one_folder)
    unlabeled += match.images_left + [p for p in match.labels_left if is_raster(p)]
    return [(image, label, _scene_base(image) if one_folder else image.stem)
            for image, label in match.pairs]


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
        found = _auto_pairs(root, files, mask_dir_names)
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
        seen = sorted({p.suffix.lower() or p.name for p in files})
        vectors = _vector_files(root, files)
        hint = (f"; the source holds vector labels ({_listed(vectors)}): set vector_labels: "
                f"{vectors[0]}" if vectors else "")
        raise DataError(
            f"{root}: unknown format: no image/label pairs found among {len(files)} files "
            f"(extensions {', '.join(seen)}); expected image and label folders side by side "
            f"(images + masks, images_png + masks_png, top + gt, train + train_labels: "
            f"folder names with an image or a label word, or in mask_dir_names), images and "
            f"labels in one folder told by stem suffixes (a_sat.jpg + a_mask.png), LabelMe "
            f"JSON beside images, side-by-side image|mask JPEGs, or set image_dir and "
            f"mask_dir{hint}")
    names = unique_names(found, root)
    pairs = [ScenePair(name, image, label, kind, root)
             for (image, label, _), name, kind in zip(found, names, kinds, strict=True)]
    paired = {q.image for q in pairs}
    return Discovery(pairs, [p for p in unlabeled if p not in paired])
