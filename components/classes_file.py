"""A dataset's classes file and the colour notation of palettes.

Published datasets ship their classes in several shapes (our ClassMap, Supervisely's
``{"classes": [{"title", "color"}]}``, a plain list, DeepGlobe's and Kaggle's
``class_dict.csv`` of ``name,r,g,b``), with colours as ``#RRGGBB`` or RGB(A) lists; this reads
them into one form. Colours are compared as 24-bit integer codes."""

from __future__ import annotations

import csv
import io
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


#: The header of a ``class_dict.csv`` (any case): one class a line, its colour in 0-255.
CSV_HEADER = ["name", "r", "g", "b"]


def _read_csv(path: Path, text: str) -> ClassesFile:
    """A ``class_dict.csv``: the header ``name,r,g,b`` and a line per class."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != CSV_HEADER:
        got = ",".join(header) if header else "an empty file"
        raise DataError(f"{path}: line 1: expected the header name,r,g,b (a class_dict.csv), "
                        f"got {got!r}")
    entries = []
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_HEADER):
            raise DataError(f"{where}: expected 4 fields name,r,g,b, got {len(row)}: "
                            f"{','.join(row)!r}")
        name, *rgb = (cell.strip() for cell in row)
        if not name:
            raise DataError(f"{where}: no class name")
        if not all(v.isascii() and v.isdigit() and int(v) <= 255 for v in rgb):
            raise DataError(f"{where}: r,g,b must be whole numbers 0-255, got "
                            f"{','.join(rgb)!r}")
        entries.append(ClassEntry(name, parse_color([int(v) for v in rgb], where)))
    if not entries:
        raise DataError(f"{path}: no classes below the header name,r,g,b")
    return ClassesFile(Path(path), entries)


def read_classes_file(path: Path) -> ClassesFile:
    """Accept our ClassMap, Supervisely-style ``{"classes": [{"title", "color"}]}``, a list,
    or (a ``.csv`` file) a ``class_dict.csv``."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM: a CSV saved by Excel
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read classes file ({err})") from err
    if Path(path).suffix.lower() == ".csv":
        return _read_csv(Path(path), text)
    try:
        data = json.loads(text)
    except ValueError as err:
        raise DataError(f"{path}: cannot read classes file: not JSON ({err}); a palette or "
                        "classes file is JSON (a list of {name, color}, or a classes.json) "
                        "or a .csv with the header name,r,g,b") from err
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
