"""Area shares per class, in hectares only where the CRS gives pixels a ground size."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from pipelines.ui.areas import area_table, class_areas, legend_pixel_area, pixel_area_m2

NAMES, COLORS = ["soil", "tea", "water"], ["#8B4513", "#00A000", "#1E90FF"]


def test_pixel_area_in_square_metres():
    half_metre = from_origin(600000, 2700000, 0.5, 0.5)
    assert pixel_area_m2(CRS.from_epsg(32644), half_metre) == pytest.approx(0.25)
    # US survey feet (New York Long Island): 1 ft = 0.3048006 m.
    feet = from_origin(1000000, 200000, 2.0, 2.0)
    assert pixel_area_m2(CRS.from_epsg(2263), feet) == pytest.approx(4 * 0.3048006 ** 2)
    assert pixel_area_m2(CRS.from_epsg(4326), from_origin(80, 20, 1e-5, 1e-5)) is None
    assert pixel_area_m2(None, half_metre) is None


def test_shares_are_of_the_predicted_pixels_and_hectares_follow_the_pixel_area():
    pixels = {"soil": 30_000, "tea": 10_000, "water": 0, "ignored": 60_000}
    rows = class_areas(pixels, NAMES, COLORS, pixel_m2=0.25)
    assert [r.name for r in rows[:3]] == NAMES and [r.color for r in rows[:3]] == COLORS
    assert [r.share for r in rows[:3]] == pytest.approx([0.75, 0.25, 0.0])
    assert [r.hectares for r in rows[:3]] == pytest.approx([0.75, 0.25, 0.0])
    headers, table = area_table(rows)
    assert headers == ["pixels", "share", "hectares"]
    assert table[0] == ("#8B4513", "soil", ["30,000", "75.0%", "0.75"])


def test_without_ground_units_there_is_no_hectares_column():
    rows = class_areas({"soil": 1, "tea": 3}, NAMES, COLORS, pixel_m2=None)
    assert rows[2].pixels == 0 and all(r.hectares is None for r in rows)
    headers, table = area_table(rows)
    assert headers == ["pixels", "share"] and table[1][2] == ["3", "75.0%"]


def test_an_all_ignored_mask_has_zero_shares():
    rows = class_areas({"ignored": 10}, NAMES, COLORS, pixel_m2=1.0)
    assert all(r.share == 0.0 for r in rows[:3]) and rows[3].share is None


def test_no_data_is_a_row_so_the_hectares_add_up():
    rows = class_areas({"soil": 30_000, "tea": 10_000, "ignored": 4_000}, NAMES, COLORS,
                       pixel_m2=0.25)
    assert [r.name for r in rows] == [*NAMES, "no data"]
    assert sum(r.hectares for r in rows) == pytest.approx(44_000 * 0.25 / 10_000)
    assert [r.share for r in rows[:2]] == pytest.approx([0.75, 0.25])
    _, table = area_table(rows)
    assert table[-1] == ("transparent", "no data", ["4,000", "–", "0.10"])


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_pixel_size_given_gives_hectares_where_the_mask_has_none(tmp_path):
    plain, utm = tmp_path / "plain.tif", tmp_path / "utm.tif"
    for path, georef in ((plain, {}),
                         (utm, {"crs": "EPSG:32650", "transform": from_origin(6e5, 3e6, 2, 2)})):
        with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1,
                           dtype="uint8", **georef) as dst:
            dst.write(np.zeros((1, 4, 4), np.uint8))
    assert legend_pixel_area(plain, None) == (None, False)
    assert legend_pixel_area(plain, 0.5) == (0.25, True)
    assert legend_pixel_area(utm, 0.5) == (4.0, False)  # its own counts, as in prediction
