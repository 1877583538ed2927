"""GDAL VRT sources: a VRT is XML naming the files it reads, anywhere on the machine.
A source's VRTs may read only files inside the source: those are what an archive or an S3
prefix brings along, what the source's fingerprint covers (a changed file outside would not
be noticed), and all a pipeline step has any business reading. GDAL takes a file for a VRT
by its bytes, whatever its name, and matches the XML's element names in any case: so do
these checks."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import rasterio

from components.raster import DataError, is_vrt, open_raster

#: Elements that name a file a VRT reads (simple/complex/raw sources, warped and
#: pansharpened datasets, overviews and mask bands all use one of these), lower-cased.
_SOURCE_TAGS = {"sourcefilename", "sourcedataset"}
_CODE_TAGS = {"pixelfunctioncode", "pixelfunctionlanguage"}
#: Largest VRT read as XML; real ones are kilobytes, even for thousands of sources.
MAX_VRT_BYTES = 64 << 20
#: VRTs reading VRTs reading ...: deeper is a loop or a mistake.
MAX_VRT_DEPTH = 8


@contextmanager
def open_source_raster(path: Path, root: Path) -> Iterator[rasterio.io.DatasetReader]:
    """``open_raster`` for a file of the source ``root``: a VRT (by its bytes) is read once
    ``check_vrt_sources`` passes, as it is checked again at each opening."""
    checked = is_vrt(path)
    if checked:
        check_vrt_sources(path, root)
    with open_raster(path, vrt=checked) as src:
        yield src


def check_vrt_sources(vrt: Path, root: Path, depth: int = 0) -> None:
    """Every file ``vrt`` reads (and the VRTs it reads, read) exists inside ``root`` and is a
    raster of a format data-plane steps read; a DataError naming the VRT and the file
    otherwise. Before GDAL opens it."""
    if depth > MAX_VRT_DEPTH:
        raise DataError(f"{vrt}: VRTs nest more than {MAX_VRT_DEPTH} deep (a loop?)")
    if vrt.stat().st_size > MAX_VRT_BYTES:
        raise DataError(f"{vrt}: a VRT of {vrt.stat().st_size} bytes, the limit is "
                        f"{MAX_VRT_BYTES}")
    try:
        tree = ET.parse(vrt)
    except ET.ParseError as exc:
        raise DataError(f"{vrt}: not a VRT (unreadable XML: {exc})") from None
    for element in tree.iter():
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if tag in _CODE_TAGS:
            raise DataError(f"{vrt}: pixel functions in code are not read; write the "
                            f"computed raster out (gdal_translate) and use that")
        if tag in _SOURCE_TAGS:
            _check_source(vrt, root, element, depth)


def _relative_to_vrt(element: ET.Element) -> bool:
    """The relativeToVRT attribute as GDAL reads it: any case, C's atoi ("01", " 1" are
    true)."""
    value = {k.lower(): v for k, v in element.attrib.items()}.get("relativetovrt", "0")
    digits = re.match(r"\s*[+-]?\d+", value)
    return digits is not None and int(digits.group()) != 0


def _check_source(vrt: Path, root: Path, element: ET.Element, depth: int) -> None:
    named = (element.text or "").strip()
    # "<": GDAL reads a name holding "<VRTDataset" as the XML of a VRT
    if named.startswith("/vsi") or ":" in named.split("/")[0] or "<" in named:
        raise DataError(f"{vrt}: source {named!r} is not a file of the source (a /vsi, URL "
                        f"or driver path); a VRT may only read files inside the source")
    base = vrt.parent if _relative_to_vrt(element) else Path.cwd()
    path = (base / named).resolve()
    if not path.is_relative_to(root.resolve()):
        raise DataError(f"{vrt}: source {named} lies outside the source {root}; a VRT may "
                        f"only read files inside the source: copy them in and name them "
                        f"relative to the VRT (relativeToVRT=\"1\"), or convert it with "
                        f"gdal_translate")
    if not path.is_file():
        raise DataError(f"{vrt}: source {named} is missing")
    if is_vrt(path):
        check_vrt_sources(path, root, depth + 1)
        return
    try:  # GDAL opens a VRT's sources in any format: some name more files or URLs
        with open_raster(path):
            pass
    except DataError:
        raise DataError(f"{vrt}: source {named} is not a GeoTIFF, PNG, JPEG, JPEG 2000 or "
                        f"BMP file (nor a VRT)") from None
