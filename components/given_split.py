"""The split a dataset already ships: list files (``train.txt``, ``val.txt``, ``test.txt``,
one image per line as a stem or a path) or ``train/``, ``val/``, ``test/`` folders. Ingest
records it per scene; the split step's ``given`` strategy uses it as is."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from components.discover import ScenePair
from components.raster import DataError
from components.wording import counted

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
            keys.append(Path(token.lstrip("./").lstrip("/")).with_suffix("").as_posix())
    return keys


@dataclass
class GivenSplits:
    splits: dict[str, str | None]  # scene name -> its split (None where the dataset gives none)
    note: str | None = None  # why lists that were found give some scenes none


def _lists_note(root: Path, lists_dir: Path, entries: dict[str, list[str]],
                keys: dict[str, set[str]], splits: dict[str, str | None],
                pairs: list[ScenePair]) -> str | None:
    """What the split lists in ``lists_dir`` name, set against the scenes they leave out."""
    missing = [p for p in pairs if splits.get(p.name) is None]
    if not missing:
        return None
    files = ", ".join(f"{split}.txt" for split in entries)
    listed = [k for keys_ in entries.values() for k in keys_]
    strays = [k for k in listed if len(keys.get(k.lower(), ())) != 1]
    stems = [p.image.stem for p in missing]
    where = lists_dir.relative_to(root).as_posix()
    note = (f"split lists found in {'the top folder' if where == '.' else where} ({files}: "
            f"{counted(len(listed), 'entry', 'entries')}) name {len(pairs) - len(missing)} of "
            f"{counted(len(pairs), 'scene')}: "
            + (f"entries such as {', '.join(strays[:2])} name no scene; " if strays else "")
            + f"scenes left out have stems such as {', '.join(stems[:2])}")
    lowered = [s.lower() for s in stems]
    if strays and all(any(k.lower().rsplit("/", 1)[-1].startswith(s)
                          and k.lower().rsplit("/", 1)[-1] != s for s in lowered)
                      for k in strays[:20]):
        note += (" (the entries begin with scene stems: they name tiles cut from the scenes, "
                 "e.g. by the dataset's own script; prepare those tiles with their lists)")
    return note


def _list_splits(root: Path, pairs: list[ScenePair],
                 folder: Path | None) -> GivenSplits | None:
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
        hits = sum(1 for keys_ in entries.values() for k in keys_
                   if len(keys.get(k.lower(), ())) == 1)
        if best is None or hits > best_hits:
            best, best_hits = (lists_dir, entries), hits
    lists_dir, entries = best
    splits: dict[str, str | None] = {}
    for split, listed in entries.items():
        for key in listed:
            names = keys.get(key.lower(), set())
            if len(names) != 1:
                continue
            (name,) = names
            # A scene listed in two splits has no given split: the 'given' strategy then
            # names it, and nothing else is held up by lists it does not use.
            splits[name] = split if splits.get(name, split) == split else None
    note = _lists_note(root, lists_dir, entries, keys, splits, pairs)
    return GivenSplits(splits, note) if best_hits else GivenSplits({}, note)


def given_splits(root: Path, pairs: list[ScenePair],
                 split_lists: str | None = None) -> GivenSplits:
    """Scene name -> the split its dataset gives it (None where it gives none), and, where
    split lists were found but leave scenes without one, what they name. List files win
    over folder names; with several sets of lists, the one naming most scenes."""
    folder = root / split_lists if split_lists else None
    if folder is not None and not folder.is_dir():
        raise DataError(f"split_lists {split_lists!r}: no such folder in the source")
    listed = _list_splits(root, pairs, folder)
    if listed is not None and listed.splits:
        return GivenSplits({p.name: listed.splits.get(p.name) for p in pairs}, listed.note)
    by_folder = {p.name: _folder_split(p.image.relative_to(root)) for p in pairs}
    note = listed.note if listed and None in by_folder.values() else None
    return GivenSplits(by_folder, note)
