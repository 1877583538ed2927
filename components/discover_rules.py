"""The rules scene discovery (components/discover.py) reads by: which files of a source it
sees (hidden files and folders and macOS archive leftovers are skipped), what kind of file
each is (raster, LabelMe JSON, GeoJSON, a label of any kind, a side-by-side image|mask),
which folder and stem names say image or label, the folder scenes are found under, and the
names scenes get (unique, filesystem-safe)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from components.raster import DRIVER_OF_SUFFIX
from components.vector_info import VECTOR_SUFFIXES
from components.vrt_sources import open_source_raster

#: .vrt: a GDAL virtual raster, whose sources must lie inside the source
#: (components/vrt_sources.py)
RASTER_SUFFIXES = {*DRIVER_OF_SUFFIX, ".vrt"}
LOSSY_SUFFIXES = {".jpg", ".jpeg", ".jp2"}  # a mask saved so holds colours no class has

# Stem suffixes published datasets put on one side of a pair only, compared in lower case,
# longest first: DeepGlobe a_sat/a_mask, Potsdam a_RGB, a_RGBIR, a_IRRG / a_label,
# a_label_noBoundary, Vaihingen's eroded a_noBoundary, LandCover.ai's split.py a / a_m.
IMAGE_STEM_SUFFIXES = ("_image", "_img", "_sat", "_rgb", "_rgbir", "_irrg", "_leftimg8bit")
LABEL_STEM_SUFFIXES = ("_label_noboundary", "_noboundary", "_mask", "_masks", "_label",
                       "_labels", "_gt", "_seg", "_lab", "_m")
# Words in folder names (split at anything but letters and digits, in lower case) that say
# a folder holds images (images_png, 2_Ortho_RGB, top) or labels (masks_png, 5_Labels_all,
# gts_for_participants, SegmentationClass); a label word wins.
IMAGE_FOLDER_WORDS = {"image", "images", "img", "imgs", "jpegimages", "sat", "rgb", "rgbir",
                      "irrg", "top", "ortho", "orthos", "orthophoto", "orthophotos", "photo",
                      "photos", "leftimg8bit"}
LABEL_FOLDER_WORDS = {"mask", "masks", "label", "labels", "lbl", "gt", "gts", "groundtruth",
                      "ann", "anns", "annot", "annotation", "annotations", "seg",
                      "segmentation", "segmentationclass"}


def never_read(relative: Path) -> bool:
    """A path below the source root that discovery skips: hidden files and folders (such as
    a .segpipe workdir) and macOS archive leftovers."""
    return any(part.startswith(".") or part == "__MACOSX" for part in relative.parts)


def visible_files(root: Path) -> list[Path]:
    """Every file under ``root`` that discovery reads (``never_read`` ones left out), sorted."""
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and not never_read(p.relative_to(root)))


def is_raster(path: Path) -> bool:
    """An image or raster mask, by its extension."""
    return path.suffix.lower() in RASTER_SUFFIXES


def is_labelme(path: Path) -> bool:
    """A LabelMe annotation: a JSON object with a ``shapes`` list."""
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


def is_label_file(path: Path) -> bool:
    """A file that may label an image: a raster mask, a JSON (LabelMe or GeoJSON) or a
    vector file."""
    suffix = path.suffix.lower()
    return is_raster(path) or suffix == ".json" or suffix in VECTOR_SUFFIXES


def _without_suffix(stem: str, suffixes: tuple[str, ...]) -> str | None:
    for suffix in sorted(suffixes, key=len, reverse=True):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return None


def image_base(stem: str) -> str | None:
    """A (lower-case) image stem without its image suffix; None when it has none."""
    return _without_suffix(stem, IMAGE_STEM_SUFFIXES)


def label_base(stem: str) -> str | None:
    """A (lower-case) label stem without its label suffix; None when it has none."""
    return _without_suffix(stem, LABEL_STEM_SUFFIXES)


def without_folder_name(stem: str, folder: str) -> str | None:
    """A (lower-case) stem without the name of its folder as its first or last word (SpaceNet
    ``MUL/MUL_x``, ``buildings/buildings_x``; Sen1Floods11 ``S1Hand/x_S1Hand``,
    ``LabelHand/x_LabelHand``); None when it has none."""
    stem, folder = stem.lower(), folder.lower()
    for sep in "_-.":
        if stem.startswith(folder + sep) and len(stem) > len(folder) + 1:
            return stem[len(folder) + 1:]
        if stem.endswith(sep + folder) and len(stem) > len(folder) + 1:
            return stem[: -len(folder) - 1]
    return None


def _words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


def is_label_folder(name: str, label_dir_names: list[str]) -> bool:
    """A folder whose name says labels: a label word in it, or one of ``label_dir_names``
    (ingest.mask_dir_names, compared in lower case)."""
    return bool(_words(name) & LABEL_FOLDER_WORDS) or name.lower() in \
        {n.lower() for n in label_dir_names}


def in_label_folder(relative: Path, label_dir_names: list[str]) -> bool:
    """A file (``relative`` to the source) below a folder whose name says labels."""
    return any(is_label_folder(part, label_dir_names) for part in relative.parent.parts)


def is_image_folder(name: str, label_dir_names: list[str]) -> bool:
    """A folder whose name says images (and not labels)."""
    return bool(_words(name) & IMAGE_FOLDER_WORDS) and not is_label_folder(name,
                                                                           label_dir_names)


def labels_of(image_folder: str, label_folder: str) -> bool:
    """``label_folder`` is named as ``image_folder``'s labels: its name plus a label word
    (Massachusetts train/train_labels, CamVid train/trainannot)."""
    image, label = image_folder.lower(), label_folder.lower()
    rest = label[len(image):].lstrip("_-. ") if label.startswith(image) else ""
    return rest in LABEL_FOLDER_WORDS


def looks_side_by_side(path: Path, root: Path) -> bool:
    """Twice as wide as high with colour bands: an image and its colour mask side by side
    (``path``: a raster of the source ``root``)."""
    with open_source_raster(path, root) as src:
        return src.width == 2 * src.height and src.count >= 3


def scene_base(image: Path) -> str:
    """A same-folder pair's scene name: the image's stem without its image suffix."""
    base = image_base(image.stem.lower())
    return image.stem[: len(base)] if base is not None else image.stem


def unique_names(pairs: list[tuple[Path, Path, str]], root: Path) -> list[str]:
    """Stems when unique, else names from the relative path; always filesystem-safe."""
    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "scene"

    stems = [safe(base) for _, _, base in pairs]
    repeats = Counter(stems)
    names = []
    for (image, _, base), stem in zip(pairs, stems, strict=True):
        if repeats[stem] == 1:
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


def data_root(root: Path) -> Path:
    """The folder scenes are found under: the source root, or its one folder when it holds
    nothing else visible (an archive of a folder). Scene paths are recorded relative to it,
    so the same data from a folder, an archive of it or S3 gets the same dataset digest."""
    top = [p for p in root.iterdir() if not never_read(p.relative_to(root))]
    return top[0] if len(top) == 1 and top[0].is_dir() else root
