"""Image and label folders side by side, found by their names at any depth of a source, for
scene discovery (components/discover.py).

Among the folders of one parent, an image folder (its name holds an image word: ``images``,
``images_png``, ``2_Ortho_RGB``, ``top``) pairs with a label folder (a label word:
``masks``, ``masks_png``, ``gt``, ``5_Labels_all``, or a name in ``ingest.mask_dir_names``),
and a folder of any name with the folder named after it plus a label word (``train`` with
``train_labels``, ``train`` with ``trainannot``), which is then its own. Every such pair of
folders in the source is read (LoveDA's ``{Train,Val}/{Urban,Rural}/{images_png,masks_png}``,
Massachusetts' ``train``, ``val`` and ``test`` with their ``*_labels``). Files pair by name
(components/discover_stems.py). Folders that fit each other in more than one way (Potsdam's
three image folders and two label folders) are an error that asks for image_dir and
mask_dir unless one pair of folders is preferred (``folder_rank``: ``images`` over
``images_preview``, ``masks`` over ``gt`` over ``labels_color``, ``ingest.mask_dir_names``
first), and so are two copies of the scenes in other formats (a ``tiff/`` and a ``png/``
tree). ``auto_pairs`` is what a source, or an ``image_dir`` with no label folder beside it, is
searched for: every pair of folders, then images and labels side by side in one folder,
told by stem suffixes, among the files no pair of folders holds."""

from __future__ import annotations

import re
from collections import defaultdict
from itertools import groupby
from pathlib import Path

from components.discover_rules import (
    IMAGE_FOLDER_WORDS,
    RASTER_SUFFIXES,
    in_label_folder,
    is_image_folder,
    is_label_file,
    is_label_folder,
    is_raster,
    labels_of,
    never_read,
    scene_base,
)
from components.discover_stems import (
    PAIRING_RULE,
    held,
    match_in_folders,
    match_stems,
    pair_by_hint,
    pair_by_problem,
)
from components.raster import DataError
from components.wording import counted


def folder_combos(names: list[str], label_dir_names: list[str]) -> list[tuple[str, str]]:
    """(image folder, label folder) pairs that the names of sibling folders allow."""
    partners = [(x, y) for x in names for y in names
                if x != y and not is_label_folder(x, label_dir_names) and labels_of(x, y)]
    taken = {n for pair in partners for n in pair}
    images = [x for x in names if x not in taken and is_image_folder(x, label_dir_names)]
    labels = [y for y in names if y not in taken and is_label_folder(y, label_dir_names)]
    return partners + [(x, y) for x in images for y in labels]


def label_folders_beside(image_dir: Path, label_dir_names: list[str]) -> list[Path]:
    """The folders beside ``image_dir`` whose names say they hold its labels: the one named
    after it (``train_labels`` for ``train``), else those with a label word that no other
    folder claims so."""
    parent = image_dir.parent
    names = sorted(d.name for d in parent.iterdir()
                   if d.is_dir() and not never_read(Path(d.name)))
    own = [y for y in names if labels_of(image_dir.name, y)]
    if own:
        return [parent / y for y in own]
    claimed = {y for x in names for y in names if x != y and labels_of(x, y)}
    return [parent / y for y in names if y != image_dir.name and y not in claimed
            and is_label_folder(y, label_dir_names)]


def _tree(folders: set[Path]) -> dict[Path, set[str]]:
    """Folder -> the names of its subfolders among ``folders`` (relative paths)."""
    tree: dict[Path, set[str]] = defaultdict(set)
    for folder in folders:
        for parent in (folder, *folder.parents[:-1]):
            tree[parent.parent].add(parent.name)
    return tree


def _check_one_way(root: Path, found: list[tuple[Path, Path, list[tuple[Path, Path]]]]
                   ) -> None:
    """Each file in one pair of folders only: else ask which folders to read."""
    fits: dict[Path, list[Path]] = defaultdict(list)
    for _, _, pairs in found:
        for image, label in pairs:
            fits[image].append(label)
            fits[label].append(image)
    for path, partners in fits.items():
        if len(partners) > 1:
            images = ", ".join(dict.fromkeys(i.as_posix() for i, _, _ in found))
            labels = ", ".join(dict.fromkeys(m.as_posix() for _, m, _ in found))
            raise DataError(
                f"{root}: the images in {images} and the labels in {labels} pair in more "
                f"than one way ({path.relative_to(root)} fits "
                f"{partners[0].relative_to(root)} and {partners[1].relative_to(root)}); "
                f"choose one image folder and one label folder with image_dir and mask_dir")


#: Label folder names preferred, after ``ingest.mask_dir_names`` in their order, when several
#: label folders fit one image folder (the order ``ingest.mask_dir_names`` has by default).
PREFERRED_LABEL_FOLDERS = ("masks", "labels", "gt")


def folder_rank(image_folder: str, label_folder: str,
                label_dir_names: list[str]) -> tuple[int, int]:
    """How much a pair of folders is preferred, lowest first: a folder named after its image
    folder (``train_labels``) first; else image folders named by an image word alone
    (``images``) before those that merely hold one (``images_preview``), and label folders
    in ``label_dir_names`` in their order, then ``PREFERRED_LABEL_FOLDERS``, then any other."""
    if labels_of(image_folder, label_folder):
        return (0, 0)
    image = 0 if image_folder.lower() in IMAGE_FOLDER_WORDS else 1
    order = [n.lower() for n in (*label_dir_names, *PREFERRED_LABEL_FOLDERS)]
    name = label_folder.lower()
    return (image, order.index(name) + 1 if name in order else len(order) + 1)


def _named_folders(root: Path, files: list[Path], label_dir_names: list[str]
                   ) -> tuple[dict[Path, list[tuple[Path, Path]]], dict[Path, list[Path]]]:
    """Parent -> its (image folder, label folder) pairs, preferred first, shallowest parents
    first; and each such folder (relative to ``root``) -> the files at any depth below it."""
    folder_of = {path: path.parent.relative_to(root) for path in files}
    tree = _tree(set(folder_of.values()) - {Path(".")})
    combos: dict[Path, list[tuple[Path, Path]]] = {}
    for parent in sorted(tree, key=lambda d: (len(d.parts), d.as_posix())):
        named = sorted(folder_combos(sorted(tree[parent]), label_dir_names),
                       key=lambda pair: folder_rank(*pair, label_dir_names))
        if named:
            combos[parent] = [(parent / x, parent / y) for x, y in named]
    wanted = {d for pairs in combos.values() for pair in pairs for d in pair}
    holds: dict[Path, list[Path]] = defaultdict(list)
    for path, folder in folder_of.items():
        holds[folder].append(path)
    under: dict[Path, list[Path]] = defaultdict(list)
    for folder, inside in holds.items():
        for above in (folder, *folder.parents):
            if above in wanted:
                under[above] += inside
    return combos, under


def folder_pairs(root: Path, files: list[Path], label_dir_names: list[str],
                 pair_by: re.Pattern | None = None
                 ) -> tuple[list[tuple[Path, Path]], set[Path]]:
    """(image, label) pairs from every pair of image and label folders under ``root``,
    shallowest first, and the folders (relative to ``root``) that gave them. When a file
    fits folders in several ways the preferred pair of folders (``folder_rank``) takes it; an
    error when two pairs of folders are preferred alike."""
    combos, under = _named_folders(root, files, label_dir_names)
    used: set[Path] = set()
    pairs: list[tuple[Path, Path]] = []
    sides: set[Path] = set()
    for named_pairs in combos.values():
        ranked = groupby(named_pairs, key=lambda pair: folder_rank(pair[0].name, pair[1].name,
                                                             label_dir_names))
        for _, alike in ranked:
            found = []
            for image_dir, label_dir in alike:
                images = [p for p in under[image_dir] if is_raster(p) and p not in used]
                labels = [p for p in under[label_dir] if is_label_file(p) and p not in used]
                match = match_stems(images, root / image_dir, labels, root / label_dir,
                                    pair_by=pair_by)
                if match.pairs:
                    found.append((image_dir, label_dir, match.pairs))
            _check_one_way(root, found)
            for image_dir, label_dir, matched in found:
                pairs += matched
                used |= {p for pair in matched for p in pair}
                sides |= {image_dir, label_dir}
    return pairs, sides


def unpaired_folders(root: Path, files: list[Path], label_dir_names: list[str],
                     pair_by: re.Pattern | None = None) -> str | None:
    """When nothing paired: the first pair of image and label folders found by their names
    that holds files on both sides, what each holds and why none pair (by the name rules, or
    by ``pair_by`` when set); else None."""
    combos, under = _named_folders(root, files, label_dir_names)
    for image_dir, label_dir in (pair for pairs in combos.values() for pair in pairs):
        images = [p for p in under[image_dir] if is_raster(p)]
        labels = [p for p in under[label_dir] if is_label_file(p)]
        if images and labels:
            image_name, label_name = image_dir.as_posix(), label_dir.as_posix()
            why = (pair_by_problem(pair_by, images, root / image_dir, labels, root / label_dir)
                   if pair_by else PAIRING_RULE + pair_by_hint(images, root / image_dir,
                                                               labels, root / label_dir))
            return (f"found image folder {image_name} and label folder {label_name}, but none "
                    f"of their files pair: {image_name} holds {held(images, 'image')}, "
                    f"{label_name} {held(labels, 'label')}: {why}")
    return None


def _copy_key(image: Path, root: Path) -> str:
    """An image's path below ``root`` without its extension, folders named for a format
    (``tiff/``, ``png/``) left out: copies of a scene in other formats share it, scenes of
    other folders (``north/images/t1.tif``, ``south/images/t1.png``) do not."""
    formats = {s.lstrip(".") for s in RASTER_SUFFIXES}
    rel = image.relative_to(root).with_suffix("")
    return "/".join(p.lower() for p in rel.parts if p.lower() not in formats)


def check_no_copies(root: Path, pairs: list[tuple[Path, Path]]) -> None:
    """Scenes found twice in other formats (Massachusetts' tiff/ and png/ trees) would be
    read twice: an error naming an example and the folder to choose."""
    formats: dict[str, dict[str, Path]] = defaultdict(dict)
    for image, _ in pairs:
        formats[_copy_key(image, root)].setdefault(image.suffix.lower(), image)
    copied = [found for found in formats.values() if len(found) > 1]
    if not copied:
        return
    first, second = (p.relative_to(root) for p in list(copied[0].values())[:2])
    differ = next(i for i, (a, b) in enumerate(zip(first.parts, second.parts, strict=False))
                  if a != b)
    copies = " or ".join(Path(*p.parts[:differ + 1]).as_posix() for p in (first, second))
    raise DataError(
        f"{root}: {counted(len(copied), 'of the scenes is', 'of the scenes are')} found "
        f"twice, in other formats (e.g. {first} and {second}); prepare one copy: make its "
        f"folder the source, or set "
        f"image_dir to it ({copies})")


def auto_pairs(root: Path, files: list[Path], label_dir_names: list[str],
               pair_by: re.Pattern | None = None) -> list[tuple[Path, Path, str]]:
    """(image, label, scene base name) for every pair of image and label folders
    (``folder_pairs``), then images and labels side by side in one folder (by suffix) among
    the files left: not in a folder that is one side of a pair of folders (there
    ``a_mask.tif`` beside ``a.tif`` is a valid-data mask, not its label), and never an image
    in a label folder."""
    across, sides = folder_pairs(root, files, label_dir_names, pair_by)
    rest = [p for p in files
            if not any(p.is_relative_to(root / side) for side in sides)
            and not in_label_folder(p.relative_to(root), label_dir_names)]
    in_folders = match_in_folders(rest).pairs
    check_no_copies(root, in_folders + across)
    return ([(image, label, scene_base(image)) for image, label in in_folders]
            + [(image, label, image.stem) for image, label in across])
