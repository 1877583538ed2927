"""Which scenes belong together: the groups of the ``group`` split strategy, the dataset's
own splits for ``given``, and the crop groups: scenes joined by ``SceneInfo.neighbours``
(touching or overlapping crops of one image, found by the tile step), which the ``scene``
and per-scene ``block`` strategies keep in one split and the others warn about.

``group_by`` is ``"parent"`` (the folder a scene's image came from), a path to a CSV of
scene,group rows (a scene named by its scene name, source path or file stem), or a regular
expression whose first group, searched in the scene's source path, names its group."""

from __future__ import annotations

import csv
import re
from pathlib import Path, PurePosixPath

from components.artifacts import SceneInfo, TileManifest
from components.name_patterns import check_id_pattern
from components.raster import DataError
from components.wording import counted

MAX_CSV_BYTES = 64 << 20


def is_csv(group_by: str) -> bool:
    return group_by.lower().endswith(".csv")


def check_group_by(group_by: str) -> str:
    """Validate ``group_by`` when the options are made (a regex must compile, with a group)."""
    if group_by == "parent" or is_csv(group_by):
        return group_by
    return check_id_pattern("group_by", group_by, "^(site_[0-9]+)/", "'parent', a .csv path or ")


def _sources(manifest: TileManifest, why: str) -> dict[str, str]:
    missing = [s.name for s in manifest.scenes if s.source is None]
    if missing:
        raise DataError(f"{why} needs each scene's source path, which this tiles.json does not "
                        f"record (e.g. scene {missing[0]}); prepare the data again")
    return {s.name: s.source for s in manifest.scenes}


def _read_csv(path: Path) -> dict[str, str]:
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise DataError(f"{path}: group CSV larger than {MAX_CSV_BYTES >> 20} MiB")
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    except OSError as err:
        raise DataError(f"{path}: cannot read the group CSV ({err})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["scene", "group"]:
        rows = rows[1:]
    groups = {}
    for number, row in enumerate(rows, 1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DataError(f"{path}: row {number} is not 'scene,group'")
        groups[row[0].strip()] = row[1].strip()
    return groups


def scene_groups(manifest: TileManifest, group_by: str) -> dict[str, str]:
    """Scene name -> group name; every scene must get one."""
    sources = _sources(manifest, f"group_by {group_by!r}")
    if group_by == "parent":
        return {name: PurePosixPath(src).parent.as_posix() for name, src in sources.items()}
    if is_csv(group_by):
        table = _read_csv(Path(group_by))
        groups = {}
        for name, src in sources.items():
            stem = PurePosixPath(src).stem
            for key in (name, src, PurePosixPath(src).with_suffix("").as_posix(), stem):
                if key in table:
                    groups[name] = table[key]
                    break
        where = f"{group_by} lists"
    else:
        pattern = re.compile(group_by)
        groups = {name: m.group(1) for name, src in sources.items()
                  if (m := pattern.search(src)) and m.group(1) is not None}
        where = f"group_by {group_by!r} matches"
    missing = sorted(sources[n] for n in sources if n not in groups)
    if missing:
        raise DataError(f"{counted(len(missing), 'scene has', 'scenes have')} no group: "
                        f"{where} none of "
                        f"{', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    return groups


def given_units(manifest: TileManifest) -> dict[str, str]:
    """Scene name -> the split its dataset gives it; every scene must have one."""
    missing = [s for s in manifest.scenes if s.given_split is None]
    if missing:
        shown = ", ".join(s.source or s.name for s in missing[:5])
        have, them = ("has", "it") if len(missing) == 1 else ("have", "them")
        raise DataError(f"strategy 'given': {len(missing)} of "
                        f"{counted(len(manifest.scenes), 'scene')} {have} no split from the "
                        f"dataset (no train/val/test folder or list names {them}, or two "
                        f"lists do), e.g. {shown}"
                        + (f"; {manifest.given_split_note}" if manifest.given_split_note
                           else ""))
    return {s.name: s.given_split for s in manifest.scenes}


def crop_groups(scenes: list[SceneInfo]) -> dict[str, str]:
    """Scene name -> its crop group: the first name (sorted) among the scenes joined to it by
    ``neighbours`` (touching or overlapping crops of one image), or its own name."""
    parent = {s.name: s.name for s in scenes}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name
    for s in scenes:
        for other in s.neighbours:
            if other in parent:
                a, b = sorted((root(s.name), root(other)))
                parent[b] = a
    return {name: root(name) for name in parent}


def parent_folders_keep(scenes: list[SceneInfo], pairs: list[tuple[str, str]]) -> int:
    """How many source folders the scenes come from, if every pair shares one (so group_by
    'parent' keeps the pairs together); 0 otherwise or when a scene's source is unknown."""
    folders = {s.name: PurePosixPath(s.source).parent.as_posix() for s in scenes if s.source}
    if len(folders) < len(scenes) or any(folders[a] != folders[b] for a, b in pairs):
        return 0
    return len(set(folders.values()))


def straddling_neighbours(scenes: list[SceneInfo], split_of_scene: dict[str, set[str]]
                          ) -> list[tuple[str, str]]:
    """Pairs of neighbouring scenes (touching or overlapping crops) in different splits."""
    pairs = []
    for s in scenes:
        for other in s.neighbours:
            if s.name < other and len(split_of_scene.get(s.name, set())
                                      | split_of_scene.get(other, set())) > 1:
                pairs.append((s.name, other))
    return pairs
