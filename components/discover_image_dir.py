"""Scene pairs in the folders the options name, for scene discovery (components/discover.py):
``image_dir`` with ``mask_dir`` (two folders, or one folder holding both, told by stem
suffixes), or ``image_dir`` alone, whose label folder is the one named beside it
(components/discover_folders.py: ``train_labels`` for ``train``, else a folder with a label
word), or, with none beside it, the image and label folders inside it. Folders whose files
do not pair are an error saying what each holds and the naming rule they missed."""

from __future__ import annotations

import re
from pathlib import Path

from components.discover_folders import auto_pairs, folder_rank, label_folders_beside
from components.discover_rules import is_label_file, is_raster, scene_base
from components.discover_stems import (
    PAIRING_RULE,
    StemMatch,
    held,
    match_in_folders,
    match_stems,
    pair_by_hint,
    pair_by_problem,
)
from components.raster import DataError


def source_folder(root: Path, rel: str, option: str) -> Path:
    """The folder ``rel`` (the value of ``option``) inside the source ``root``; an error
    naming the source's folders when there is none."""
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_dir():
        top = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataError(f"{option} {rel!r}: no such folder in the source (its folders: "
                        f"{', '.join(top) or 'none'})")
    return root / rel


def _none_pair(image_dir: str, label_folder: str, match: StemMatch, one_folder: bool,
               why: str) -> DataError:
    """Named folders whose files do not pair: what each holds, and ``why`` (the rule they
    missed; ``label_folder``: mask_dir as the options name it, or the folder found beside)."""
    images, labels = held(match.images_left, "image"), held(match.labels_left, "label")
    if one_folder:
        held_text = (f"image_dir and mask_dir {image_dir!r} hold {images} and {labels} (in "
                     f"one folder a label's stem ends in a label suffix)")
    else:
        held_text = f"image_dir {image_dir!r} holds {images}, and {label_folder} {labels}"
    return DataError(f"{held_text}, but none pair: {why}")


def _beside(root: Path, files: list[Path], images_path: Path, image_dir: str,
            label_dir_names: list[str], pair_by: re.Pattern | None
            ) -> tuple[str, Path, StemMatch]:
    """``image_dir``'s label folder, found beside it by name, and the pairs it gives."""
    images = [p for p in files if is_raster(p) and p.is_relative_to(images_path)]
    tried = []
    for folder in label_folders_beside(images_path, label_dir_names):
        labels = [p for p in files if is_label_file(p) and p.is_relative_to(folder)]
        if labels:
            rel = folder.relative_to(root).as_posix()
            tried.append((rel, folder, match_stems(images, images_path, labels, folder,
                                                   pair_by=pair_by)))
    fitting = [(rel, folder, match) for rel, folder, match in tried if match.pairs]
    ranks = [folder_rank(images_path.name, Path(rel).name, label_dir_names)
             for rel, _, _ in fitting]
    fitting = [fit for fit, rank in zip(fitting, ranks, strict=True) if rank == min(ranks)]
    if len(fitting) > 1:
        raise DataError(f"image_dir {image_dir!r}: its images have labels in "
                        f"{' and in '.join(rel for rel, _, _ in fitting)}; choose one with "
                        f"mask_dir")
    if fitting or tried:
        return (fitting or tried)[0]
    raise DataError(f"image_dir {image_dir!r}: no label folder beside it (a folder named "
                    f"with a label word, e.g. masks, labels, gt, annotations, or "
                    f"{images_path.name}_labels, or in mask_dir_names) and no image and "
                    f"label folders inside it; set mask_dir")


def image_dir_pairs(root: Path, files: list[Path], image_dir: str, mask_dir: str | None,
                    label_dir_names: list[str], unlabeled: list[Path],
                    pair_by: re.Pattern | None = None) -> list[tuple[Path, Path, str]]:
    """(image, label, scene base name) for the images in ``image_dir`` (the module
    docstring); the images, and raster labels, left without a partner are added to
    ``unlabeled``."""
    images_path = source_folder(root, image_dir, "image_dir")
    inside = [p for p in files if p.is_relative_to(images_path)]
    if mask_dir is None and not label_folders_beside(images_path, label_dir_names):
        # a folder of image and label folders (one copy of a dataset, one of its splits)
        found = auto_pairs(root, inside, label_dir_names, pair_by)
        if found:
            used = {p for pair in found for p in pair[:2]}
            unlabeled += [p for p in inside if is_raster(p) and p not in used]
            return found
    one_folder, label_folder = False, f"mask_dir {mask_dir!r}"
    if mask_dir is None:
        beside, masks_path, match = _beside(root, files, images_path, image_dir,
                                            label_dir_names, pair_by)
        label_folder = f"the label folder beside it, {beside!r},"
    elif (masks_path := source_folder(root, mask_dir, "mask_dir")).resolve() == \
            images_path.resolve():
        one_folder, match = True, match_in_folders(inside)
    else:
        images = [p for p in inside if is_raster(p) and not p.is_relative_to(masks_path)]
        labels = [p for p in files if is_label_file(p) and p.is_relative_to(masks_path)]
        match = match_stems(images, images_path, labels, masks_path, pair_by=pair_by)
    if not match.pairs:
        if one_folder:
            why = PAIRING_RULE
        elif pair_by:
            why = pair_by_problem(pair_by, match.images_left, images_path, match.labels_left,
                                  masks_path)
        else:
            why = PAIRING_RULE + pair_by_hint(match.images_left, images_path,
                                              match.labels_left, masks_path)
        raise _none_pair(image_dir, label_folder, match, one_folder, why)
    unlabeled += match.images_left + [p for p in match.labels_left if is_raster(p)]
    return [(image, label, scene_base(image) if one_folder else image.stem)
            for image, label in match.pairs]
