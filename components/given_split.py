"""The split a dataset already ships: list files (``train.txt``, ``val.txt``, ``test.txt``,
one image per line as a stem or a path) or ``train/``, ``val/``, ``test/`` folders. Ingest
records it per scene; the split step's ``given`` strategy uses it as is."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from components.discover import ScenePair
from components.raster import DataError

SPLIT_WORDS = {
    "train": {"train", "training", "trn"},
    "val": {"val", "valid", "validation", "dev"},
    "test": {"test", "testing", "tst"},
}
LIST_NAMES = {f"{word}.txt": split for split, words in SPLIT_WORDS.items() for word in words}
MAX_LIST_BYTES = 64 << 20


def _folder_split(rel: Path) -> str | None:
    """The deepest folder of the image's path that names a split."""
    for part in reversed(rel.parts[:-1]):
        for split, words in SPLIT_WORDS.items():
            if part.lower() in words:
                return split
    return None


def _entries(path: Path) -> list[str]:
    if path.stat().st_size > MAX_LIST_BYTES:
        raise DataError(f"{path}: split list larger than {MAX_LIST_BYTES >> 20} MiB")
    keys = []
    for line in path.read_text(errors="replace").splitlines():
        token = line.strip().split()[0] if line.strip() else ""
        if token and not token.startswith("#"):
            keys.append(Path(token.lstrip("./").lstrip("/")).with_suffix("").as_posix().lower())
    return keys


def _list_splits(root: Path, pairs: list[ScenePair],
                 folder: Path | None) -> dict[str, str] | None:
    by_folder: dict[Path, dict[str, Path]] = defaultdict(dict)
    candidates = ([p for p in folder.iterdir() if p.is_file()] if folder
                  else [p for p in root.rglob("*.txt") if p.is_file()])
    for path in candidates:
        if path.name.lower() in LIST_NAMES:
            by_folder[path.parent][LIST_NAMES[path.name.lower()]] = path
    if not by_folder:
        if folder is not None:
            raise DataError(f"split_lists {folder}: no train.txt, val.txt or test.txt in it")
        return None
    keys: dict[str, set[str]] = defaultdict(set)
    for pair in pairs:
        rel = pair.image.relative_to(root).with_suffix("").as_posix().lower()
        keys[rel].add(pair.name)
        keys[pair.image.stem.lower()].add(pair.name)
    best, best_hits = None, 0
    for lists_dir in sorted(by_folder, key=lambda d: (len(d.parts), str(d))):
        entries = {split: _entries(path) for split, path in by_folder[lists_dir].items()}
        hits = sum(1 for keys_ in entries.values() for k in keys_ if len(keys.get(k, ())) == 1)
        if hits > best_hits:
            best, best_hits = (lists_dir, entries), hits
    if best is None:
        return None
    _, entries = best
    splits: dict[str, str | None] = {}
    for split, listed in entries.items():
        for key in listed:
            names = keys.get(key, set())
            if len(names) != 1:
                continue
            (name,) = names
            # A scene listed in two splits has no given split: the 'given' strategy then
            # names it, and nothing else is held up by lists it does not use.
            splits[name] = split if splits.get(name, split) == split else None
    return splits


def given_splits(root: Path, pairs: list[ScenePair],
                 split_lists: str | None = None) -> dict[str, str | None]:
    """Scene name -> the split its dataset gives it (None where it gives none). List files
    win over folder names; with several sets of lists, the one naming most scenes."""
    folder = root / split_lists if split_lists else None
    if folder is not None and not folder.is_dir():
        raise DataError(f"split_lists {split_lists!r}: no such folder in the source")
    listed = _list_splits(root, pairs, folder)
    if listed is not None:
        return {p.name: listed.get(p.name) for p in pairs}
    return {p.name: _folder_split(p.image.relative_to(root)) for p in pairs}
