"""Where a raster label lies on its image's pixel grid, and reading it there: the one way
the ingest's survey and its scene writer read a raster label.

A georeferenced label may cover only part of its image's ground (digitised over part of a
scene) or more (exported for a larger area), as long as it lies on the image's grid: the
same CRS, the same pixel size and its pixel corners on the image's. It is read by the
image's bounds, as Raster Vision and TorchGeo read labels; image pixels it does not cover
read as no label (NaN for class ids, ``IGNORE_CODE`` for colours: what a transparent pixel
reads as), so they become the ignore index, never background. A label on another grid
(another CRS or pixel size, off the image's pixel corners, or over none of its ground) is
an error naming the file: read pixel for pixel it would label another place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from components.discover import ScenePair
from components.masks import IGNORE_CODE, MaskFormat, read_mask
from components.raster import DataError

#: How far (in the image's pixels) a label's pixel corners may lie off the image's when its
#: bounds differ from the image's: float noise of a GIS export, not a resampling.
GRID_TOLERANCE = 0.05


@dataclass(frozen=True)
class LabelPlace:
    """A label's pixels in its image's pixel grid: its first column and row there (negative:
    the label starts before the image), its size, and the column it starts at in its own
    file (a side-by-side pair's right half)."""
    col: int
    row: int
    width: int
    height: int
    file_col: int = 0

    def unlabelled(self, width: int, height: int) -> int:
        """How many pixels of a ``width`` x ``height`` image the label does not cover."""
        cols = max(0, min(width, self.col + self.width) - max(0, self.col))
        rows = max(0, min(height, self.row + self.height) - max(0, self.row))
        return width * height - cols * rows

    def read(self, src, path: Path, fmt: MaskFormat, window: Window) -> np.ndarray:
        """The label's raw values (``components.masks.read_mask``) over ``window`` of the
        image's grid; pixels outside the label read as no label (NaN or ``IGNORE_CODE``)."""
        col, row = int(window.col_off), int(window.row_off)
        width, height = int(window.width), int(window.height)
        left, top = max(col, self.col), max(row, self.row)
        right = min(col + width, self.col + self.width)
        bottom = min(row + height, self.row + self.height)
        inside = Window(self.file_col + left - self.col, top - self.row,
                        max(0, right - left), max(0, bottom - top))
        if (left, top, right, bottom) == (col, row, col + width, row + height):
            return read_mask(src, path, fmt, inside)
        colours = fmt.kind == "colors"
        out = np.full((height, width), IGNORE_CODE if colours else np.nan,
                      np.int64 if colours else np.float64)
        if right > left and bottom > top:
            out[top - row:bottom - row, left - col:right - col] = read_mask(src, path, fmt,
                                                                            inside)
        return out


def image_window(pair: ScenePair, src) -> Window:
    """The image's pixels in its file (a side-by-side pair's left half)."""
    if pair.kind == "side_by_side":
        return Window(0, 0, src.width // 2, src.height)
    return Window(0, 0, src.width, src.height)


def place_label(pair: ScenePair, image, label) -> LabelPlace:
    """Where the open ``label`` raster lies on the open ``image``'s grid; a ``DataError``
    naming the label when it lies on another grid. Bounds within half a pixel of the image's
    (and the same size) are the image's own; a label without georeferencing (a PNG mask
    beside a GeoTIFF) is matched by its size alone."""
    window = image_window(pair, image)
    width, height = int(window.width), int(window.height)
    if pair.kind == "side_by_side":
        return LabelPlace(0, 0, width, height, file_col=width)
    if _georeferenced(image) and _georeferenced(label):
        if image.crs is not None and label.crs is not None and image.crs != label.crs:
            raise DataError(f"{pair.label}: CRS {_crs_name(label.crs)} differs from its "
                            f"image {pair.image}'s {_crs_name(image.crs)}; reproject the "
                            "label onto the image's grid")
        if not (label.transform.is_identity or image.transform.is_identity) and not (
                (label.width, label.height) == (width, height) and _same_bounds(image, label)):
            return _grid_place(pair, image, label)
    if (label.width, label.height) != (width, height):
        raise DataError(f"{pair.label}: mask is {label.width}x{label.height} but image "
                        f"{pair.image} is {width}x{height}")
    return LabelPlace(0, 0, width, height)


def _grid_place(pair: ScenePair, image, label) -> LabelPlace:
    """A label whose bounds differ from its image's: on the image's grid, or an error."""
    # The image's pixel coordinates -> the label's: a whole-pixel shift on the same grid,
    # measured over the image (a label of a wide area may start far from it).
    to_label = ~label.transform @ image.transform
    drift = max(abs(to_label.a - 1) * image.width + abs(to_label.b) * image.height,
                abs(to_label.d) * image.width + abs(to_label.e - 1) * image.height)
    units = _units(image, label)
    if drift > GRID_TOLERANCE:
        ours, theirs = image.transform, label.transform
        if turn := _axes_turn(ours, theirs):
            raise DataError(f"{pair.label}: its grid is {turn} against its image "
                            f"{pair.image}'s; resample it onto the image's grid")
        raise DataError(
            f"{pair.label}: its pixels are {abs(theirs.a):g} x {abs(theirs.e):g}{units}, its "
            f"image {pair.image}'s {abs(ours.a):g} x {abs(ours.e):g}{units}; a label of other "
            "bounds than its image's must lie on its grid: resample it onto the image's grid")
    col, row = -round(to_label.c), -round(to_label.f)
    off = (-to_label.c - col, -to_label.f - row)  # the label's shift off the grid, in px
    if max(abs(off[0]), abs(off[1])) > GRID_TOLERANCE:
        x, y = (round(d, 2) + 0.0 for d in off)  # + 0.0: no "-0.00" for float noise
        raise DataError(
            f"{pair.label}: lies off its image {pair.image}'s pixel grid by {x:+.2f} px in x, "
            f"{y:+.2f} px in y (more than {GRID_TOLERANCE:g} px); a label of other bounds "
            "than its image's must lie on its grid: resample it onto the image's grid")
    place = LabelPlace(col, row, label.width, label.height)
    if place.unlabelled(image.width, image.height) == image.width * image.height:
        ours, theirs = image.bounds, label.bounds
        raise DataError(
            f"{pair.label}: lies elsewhere than its image {pair.image}: its bounds are offset "
            f"by x {theirs.left - ours.left:+g}, y {theirs.top - ours.top:+g}{units} (top "
            f"left) and x {theirs.right - ours.right:+g}, y {theirs.bottom - ours.bottom:+g}"
            f"{units} (bottom right); it covers none of the image's ground")
    return place


def _same_bounds(image, label) -> bool:
    """Bounds within half a pixel of the image's, edge by edge."""
    tolerance = (abs(image.transform.a) / 2, abs(image.transform.e) / 2)
    ours, theirs = image.bounds, label.bounds
    offsets = [theirs.left - ours.left, theirs.top - ours.top,
               theirs.right - ours.right, theirs.bottom - ours.bottom]
    return all(abs(d) <= tolerance[i % 2] for i, d in enumerate(offsets))


def _axes_turn(ours, theirs) -> str | None:
    """How the grid ``theirs`` is turned against ``ours`` ("flipped upside down", "rotated"
    ...); None when its axes run as ours do (only its pixel size may differ)."""
    differ = [t for t in "abde" if np.sign(getattr(ours, t)) != np.sign(getattr(theirs, t))]
    if not differ:
        return None
    if any(getattr(grid, t) for grid in (ours, theirs) for t in "bd"):
        return "rotated"
    return "flipped " + " and ".join(way for t, way in (("e", "upside down"),
                                                         ("a", "left to right")) if t in differ)


def _georeferenced(src) -> bool:
    return src.crs is not None or not src.transform.is_identity


def _units(image, label) -> str:
    units = getattr((image.crs or label.crs), "linear_units", "") or ""
    return "" if units in ("", "unknown") else f" {units}"


def _crs_name(crs) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:80]
