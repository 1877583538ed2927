"""GDAL VRT sources: a ``.vrt`` is XML naming the files it reads, anywhere on the machine.
A source's VRTs may read only files inside the source: those are what an archive or an S3
prefix brings along, what the source's fingerprint covers (a changed file outside would not
be noticed), and all a pipeline step has any business reading."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from components.raster import DataError

#: Elements that name a file a VRT reads (simple/complex/raw sources, warped and
#: pansharpened datasets, overviews and mask bands all use one of these).
_SOURCE_TAGS = {"SourceFilename", "SourceDataset"}
#: Largest VRT read as XML; real ones are kilobytes, even for thousands of sources.
MAX_VRT_BYTES = 64 << 20
#: VRTs reading VRTs reading ...: deeper is a loop or a mistake.
MAX_VRT_DEPTH = 8


def is_vrt(path: Path) -> bool:
    return path.suffix.lower() == ".vrt"


def check_vrt_sources(vrt: Path, root: Path, depth: int = 0) -> None:
    """Every file ``vrt`` reads (and the VRTs it reads, read) exists inside ``root``; a
    DataError naming the VRT and the file otherwise. Before GDAL opens it."""
    if depth > MAX_VRT_DEPTH:
        raise DataError(f"{vrt}: VRTs nest more than {MAX_VRT_DEPTH} deep (a loop?)")
    if vrt.stat().st_size > MAX_VRT_BYTES:
        raise DataError(f"{vrt}: a VRT of {vrt.stat().st_size} bytes, the limit is "
                        f"{MAX_VRT_BYTES}")
    try:
        tree = ET.parse(vrt)
    except ET.ParseError as exc:
        raise DataError(f"{vrt}: not a VRT (unreadable XML: {exc})") from None
    inside = root.resolve()
    for element in tree.iter():
        if element.tag in ("PixelFunctionCode", "PixelFunctionLanguage"):
            raise DataError(f"{vrt}: pixel functions in code are not read; write the "
                            f"computed raster out (gdal_translate) and use that")
        if element.tag not in _SOURCE_TAGS:
            continue
        named = (element.text or "").strip()
        if named.startswith("/vsi") or ":" in named.split("/")[0]:
            raise DataError(f"{vrt}: source {named!r} is not a file of the source (a "
                            f"/vsi, URL or driver path); a VRT may only read files inside "
                            f"the source")
        base = vrt.parent if element.get("relativeToVRT") == "1" else Path.cwd()
        path = (base / named).resolve()
        if not path.is_relative_to(inside):
            raise DataError(f"{vrt}: source {named} lies outside the source {root}; a VRT "
                            f"may only read files inside the source: copy them in and name "
                            f"them relative to the VRT (relativeToVRT=\"1\"), or convert "
                            f"it with gdal_translate")
        if not path.is_file():
            raise DataError(f"{vrt}: source {named} is missing")
        if is_vrt(path):
            check_vrt_sources(path, root, depth + 1)
