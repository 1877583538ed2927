"""Read raster masks as what they mean, whatever the file stores.

- one band without a colour table: class ids (any values; NaN is ignored);
- one band with a colour table (PNG mode "P", GeoTIFF palette): the *colours* of the table,
  because the table differs per file in published datasets (index 0 is one class in this
  file and another in the next). Table entries that are fully transparent are ignored, and
  so is index 255 where the table gives it VOC's border colour (224, 224, 192);
- two bands: class ids plus alpha; three: RGB colours; four: RGBA colours. Alpha is dropped
  (the caller warns) and fully transparent pixels are ignored.

Colours are handled as int64 codes 0xRRGGBB; ``IGNORE_CODE`` marks ignored pixels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from components.raster import DataError, read_window

IGNORE_CODE = -1
VOC_BORDER_INDEX = 255
VOC_BORDER_COLOR = (224, 224, 192)
MaskKind = Literal["ids", "colors"]


@dataclass(frozen=True)
class MaskFormat:
    kind: MaskKind
    indexed: bool = False
    alpha: bool = False
    table: np.ndarray | None = None  # indexed masks: index -> code (IGNORE_CODE, or -2 unset)


def rgb_codes(block: np.ndarray) -> np.ndarray:
    """(>=3, H, W) integer bands -> (H, W) int64 0xRRGGBB."""
    rgb = block[:3].astype(np.int64)
    return (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]


def _table(src, path: Path) -> np.ndarray:
    try:
        colormap = src.colormap(1)
    except ValueError as err:
        raise DataError(f"{path}: mask has a palette colour interpretation but no colour "
                        f"table ({err})") from None
    table = np.full(max(colormap, default=0) + 1, -2, np.int64)  # -2: not in the table
    for index, (r, g, b, *alpha) in colormap.items():
        transparent = bool(alpha) and alpha[0] == 0
        voc_border = index == VOC_BORDER_INDEX and (r, g, b) == VOC_BORDER_COLOR
        table[index] = IGNORE_CODE if transparent or voc_border else (r << 16) | (g << 8) | b
    return table


def mask_format(src, path: Path, color_table: Literal["colors", "ids"] = "colors") -> MaskFormat:
    """What an open mask raster stores; ``color_table="ids"`` reads indexed masks as ids."""
    count = src.count
    if count not in (1, 2, 3, 4):
        raise DataError(f"{path}: mask has {count} bands; expected 1 (class ids or a colour "
                        "table), 2 (ids and alpha), 3 (RGB) or 4 (RGBA)")
    if count == 1 and src.colorinterp[0] == ColorInterp.palette and color_table == "colors":
        return MaskFormat("colors", indexed=True, table=_table(src, path))
    if count <= 2:
        return MaskFormat("ids", alpha=count == 2)
    return MaskFormat("colors", alpha=count == 4)


def read_mask(src, path: Path, fmt: MaskFormat, window: Window) -> np.ndarray:
    """Class-id masks: the raw values (alpha 0 -> NaN as float); colour masks: int64 codes
    with ``IGNORE_CODE`` where the pixel is ignored."""
    block = read_window(src, path, window=window)
    if fmt.kind == "ids":
        values = block[0]
        if fmt.alpha:
            values = values.astype(np.float64)
            values[block[1] == 0] = np.nan
        return values
    if fmt.indexed:
        index = block[0].astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(fmt.table)
                           or (fmt.table[np.unique(index)] == -2).any()):
            missing = [int(i) for i in np.unique(index)
                       if i < 0 or i >= len(fmt.table) or fmt.table[i] == -2]
            raise DataError(f"{path}: mask indices {', '.join(map(str, missing[:10]))} are not "
                            "in its colour table")
        return fmt.table[index]
    codes = rgb_codes(block)
    if fmt.alpha:
        codes[block[3] == 0] = IGNORE_CODE
    return codes
