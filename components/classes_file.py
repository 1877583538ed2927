"""A dataset's classes file and the colour notation of palettes.

Published datasets ship their classes in several shapes (our ClassMap, Supervisely's
``{"classes": [{"title", "color"}]}``, a plain list), with colours as ``#RRGGBB`` or RGB(A)
lists; this reads them into one form. Colours are compared as 24-bit integer codes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from components.raster import DataError


@dataclass(frozen=True)
class ClassEntry:
    name: str
    color: str | None = None  # "#RRGGBB"
    value: int | None = None  # raw mask value, when the file says which


@dataclass(frozen=True)
class ClassesFile:
    path: Path
    entries: list[ClassEntry]
    ignore_index: int | None = None


def parse_color(value, where: str) -> str:
    if isinstance(value, str) and len(value.lstrip("#")) == 6:
        try:
            int(value.lstrip("#"), 16)
            return "#" + value.lstrip("#").upper()
        except ValueError:
            pass
    if isinstance(value, list | tuple) and len(value) in (3, 4) and all(
            isinstance(v, int) and 0 <= v <= 255 for v in value[:3]):
        return "#{:02X}{:02X}{:02X}".format(*value[:3])
    raise DataError(f"{where}: {value!r} is not a colour ('#RRGGBB' or a list of 3 integers "
                    "0-255)")


def color_code(color: str) -> int:
    return int(color.lstrip("#"), 16)


def code_color(code: int) -> str:
    return f"#{int(code):06X}"


def read_classes_file(path: Path) -> ClassesFile:
    """Accept our ClassMap, Supervisely-style ``{"classes": [{"title", "color"}]}`` or a list."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read classes file ({err})") from err
    items = data.get("classes") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise DataError(f"{path}: expected a non-empty list of classes")
    entries = []
    for i, item in enumerate(items):
        where = f"{path}: class entry {i + 1}"
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected an object with a name and colour")
        name = item.get("name", item.get("title", item.get("label")))
        if not isinstance(name, str):
            raise DataError(f"{where}: no name/title")
        color = item.get("color", item.get("colour"))
        value = item.get("value", item.get("id"))
        entries.append(ClassEntry(name=name,
                                  color=parse_color(color, where) if color is not None else None,
                                  value=value if isinstance(value, int) else None))
    ignore = data.get("ignore_index") if isinstance(data, dict) else None
    return ClassesFile(Path(path), entries, ignore if isinstance(ignore, int) else None)
