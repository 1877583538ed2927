"""A minimum polygon area over whole regions, not the pieces the block grid cuts."""

from __future__ import annotations

import numpy as np
import pytest

from serving.polygon_area import area_bounds
from serving.polygons import PolygonOptions, write_polygons
from tests.serving.test_polygons import (
    BLOCK,
    NAMES,
    PIXEL,
    features,
    pixels_of,
    write_mask,
    write_seam_mask,
)


def test_area_is_the_outer_ring_less_the_holes_and_exact_at_utm_coordinates():
    """A 10 x 6 m rectangle with a 2 x 2 m hole, 5e5 m east and 4e6 m north: the shoelace
    sum of raw coordinates there would carry ~1e13 products and lose the metres."""
    x, y = 500000.1, 4000000.3
    outer = [(x, y), (x + 10, y), (x + 10, y + 6), (x, y + 6), (x, y)]
    hole = [(x + 1, y + 1), (x + 1, y + 3), (x + 3, y + 3), (x + 3, y + 1), (x + 1, y + 1)]
    area, bounds = area_bounds([outer, hole])
    assert area == pytest.approx(56, abs=1e-6)
    assert bounds == pytest.approx((x, y, x + 10, y + 6))


def test_min_area_drops_small_regions_whole_never_pieces_of_big_ones(tmp_path):
    mask_path = write_seam_mask(tmp_path / "mask.tif")
    out = tmp_path / "p.geojson"
    write_polygons(mask_path, out, NAMES, 255, PolygonOptions(min_area=50 * PIXEL**2),
                   block=BLOCK)
    kept = features(out)
    # the field's 40-px piece left of the seam stays: its region has 320 px
    assert sorted(pixels_of(f) for f in kept) == [40, 280]
    assert {f["properties"]["class_name"] for f in kept} == {"tea"}
    write_polygons(mask_path, out, NAMES, 255, PolygonOptions(min_area=9 * PIXEL**2),
                   block=BLOCK)
    assert sorted(pixels_of(f) for f in features(out)) == [9, 40, 280]  # 9 px is enough
    write_polygons(mask_path, out, NAMES, 255, PolygonOptions(min_area=8 * PIXEL**2),
                   block=BLOCK)
    assert sorted(pixels_of(f) for f in features(out)) == [4, 4, 9, 40, 280]


def test_beyond_the_widest_margin_small_regions_may_stay_big_ones_always_do(tmp_path):
    """min area 1500 px reads 1024 px around a 2048-px block: a 1-px-high line of 1200 px
    that runs past that margin cannot be measured whole from the first block, so its piece
    there is kept (never drop what may be big); the second block sees it whole and drops
    its piece, and a 50-px speck is dropped."""
    mask = np.zeros((8, 3300), np.uint8)
    mask[2, 1900:3100] = 1  # 1200 px, through the grid line at 2048 and past 3072
    mask[5, 100:150] = 1  # 50 px
    path = write_mask(tmp_path / "line.tif", mask)
    out = tmp_path / "p.geojson"
    write_polygons(path, out, NAMES, 255, PolygonOptions(min_area=1500 * PIXEL**2))
    assert [pixels_of(f) for f in features(out)] == [148]
