"""Per-class area shares of a predicted mask, in hectares when the mask lies in a projected
CRS (a geographic CRS has no fixed pixel area, a plain image no ground units) or the user
gave the scene's pixel size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine

from serving.quiet import plain_images_quiet

SQUARE_METRES_PER_HECTARE = 10_000.0
#: The legend's last row: the pixels the mask leaves out (255: nodata, transparency), so
#: the classes' hectares and this row add up to the scene's.
NO_DATA, NO_DATA_COLOR = "no data", "transparent"


@dataclass(frozen=True)
class ClassArea:
    name: str
    color: str
    pixels: int
    share: float | None  # of the predicted (not ignored) pixels; None for the no-data row
    hectares: float | None


def pixel_area_m2(crs, transform: Affine) -> float | None:
    """Ground area of one pixel in square metres, or None without a projected CRS."""
    if crs is None or not crs.is_projected:
        return None
    _, metres_per_unit = crs.linear_units_factor
    return abs(transform.a * transform.e - transform.b * transform.d) * metres_per_unit ** 2


def class_areas(class_pixels: dict[str, int], class_names: list[str], class_colors: list[str],
                pixel_m2: float | None) -> list[ClassArea]:
    """One row per class, in the model's class order, shares of the predicted pixels; then
    a NO_DATA row (no share) when the mask leaves pixels out."""
    counts = [int(class_pixels.get(name, 0)) for name in class_names]
    total = sum(counts)
    rows = []
    for name, color, count in zip(class_names, class_colors, counts, strict=True):
        hectares = count * pixel_m2 / SQUARE_METRES_PER_HECTARE if pixel_m2 else None
        rows.append(ClassArea(name=name, color=color, pixels=count,
                              share=count / total if total else 0.0, hectares=hectares))
    if ignored := int(class_pixels.get("ignored", 0)):
        hectares = ignored * pixel_m2 / SQUARE_METRES_PER_HECTARE if pixel_m2 else None
        rows.append(ClassArea(name=NO_DATA, color=NO_DATA_COLOR, pixels=ignored, share=None,
                              hectares=hectares))
    return rows


def mask_pixel_area(mask_path: Path) -> float | None:
    with plain_images_quiet(), rasterio.open(mask_path) as src:
        return pixel_area_m2(src.crs, src.transform)


def legend_pixel_area(mask_path: Path, given_size: float | None) -> tuple[float | None, bool]:
    """A mask pixel's area in square metres for the legend, and whether it comes from the
    pixel size the user gave (the Pixel size field, asked only of a scene without a
    projected CRS, whose own would count): the mask's own, else that size squared."""
    own = mask_pixel_area(mask_path)
    if own is not None or given_size is None:
        return own, False
    return given_size * given_size, True


def area_table(rows: list[ClassArea]) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    """Headers and legend rows (colour, name, cells) for legend.legend_html."""
    with_ha = any(row.hectares is not None for row in rows)
    headers = ["pixels", "share"] + (["hectares"] if with_ha else [])
    table = []
    for row in rows:
        cells = [f"{row.pixels:,}", "–" if row.share is None else f"{100 * row.share:.1f}%"]
        if with_ha:
            cells.append(f"{row.hectares:,.2f}")
        table.append((row.color, row.name, cells))
    return headers, table
