"""A raster label on its image's grid but of other bounds: read by the image's bounds, the
ground it leaves uncovered ignored (never background), and said once; a label off the grid
is refused naming the file, before any scene is written."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window

from components.ingest import ingest_source
from components.ingest_options import IngestOptions
from components.label_place import LabelPlace
from components.masks import IGNORE_CODE, mask_format
from components.raster import DataError, write_array
from components.survey import IngestWarning
from components.tile import TileOptions, tile_scenes
from tests.components.conftest import UTM, make_image, make_labels, write_pair

ORIGIN = (600000.0, 3000000.0)
PIXEL = 2.0
GRID = from_origin(*ORIGIN, PIXEL, PIXEL)


def _on_grid(col: float, row: float, pixel: float = PIXEL) -> Affine:
    """The image's grid (or one of ``pixel`` metres) started ``col``, ``row`` of its pixels
    right and down of the image's top left."""
    return from_origin(ORIGIN[0] + col * PIXEL, ORIGIN[1] - row * PIXEL, pixel, pixel)


def _ingested(out, scene: str) -> np.ndarray:
    with rasterio.open(out / "scenes" / f"{scene}_mask.tif") as src:
        return src.read(1)


def _partial_lines(caught) -> list[str]:
    return [str(w.message) for w in caught if "only part" in str(w.message)]


def test_a_label_over_part_of_its_image_leaves_the_rest_ignored_and_untiled(tmp_path):
    """Value 0 is a class (background) here: the uncovered half must not read as it."""
    src = tmp_path / "src"
    labels = make_labels(values=(0, 1))[:, ::-1].copy()  # 1 on the left, 0 on the right
    write_pair(src, "a", make_image(), make_labels(values=(0, 1)))
    _, mask = write_pair(src, "b", make_image(seed=1), labels)
    write_array(mask, labels[:, :16], UTM, GRID)  # the left half only
    out = tmp_path / "out"
    with pytest.warns(IngestWarning) as caught:
        classes = ingest_source(src, out, IngestOptions())
    assert classes.names == ["background", "class_1"]
    ingested = _ingested(out, "b")
    assert (ingested[:, :16] == labels[:, :16]).all()
    assert (ingested[:, 16:] == 255).all()
    assert _partial_lines(caught) == [
        "1 scene's label covers only part of its image: 512 of its image's 1,024 pixels (50.0%) "
        f"lie outside its label and are ignored (never trained on or scored): {mask}"]
    manifest = tile_scenes(out, out, TileOptions(patch_size=16, stride=16))
    assert sorted(t.window[:2] for t in manifest.tiles if t.scene == "b") == [(0, 0), (0, 16)]
    assert all(t.valid_fraction == 1.0 for t in manifest.tiles)


def test_a_colour_label_inside_its_image_lands_on_its_own_pixels(tmp_path):
    src = tmp_path / "src"
    _, mask = write_pair(src, "a", make_image(), np.zeros((3, 32, 32), np.uint8))
    colours = np.zeros((3, 20, 16), np.uint8)
    colours[1] = 200  # green everywhere
    colours[:, 0, 0] = (255, 0, 0)  # red at the label's top left
    write_array(mask, colours, UTM, _on_grid(8, 4))
    out = tmp_path / "out"
    with pytest.warns(IngestWarning, match=r"^1 scene's label covers only part of its image: "
                      r"704 of its image's 1,024 pixels \(68\.8%\)"):
        classes = ingest_source(src, out, IngestOptions())
    red, green = classes.names.index("class_FF0000"), classes.names.index("class_00C800")
    expected = np.full((32, 32), 255)
    expected[4:24, 8:24] = green
    expected[4, 8] = red
    assert (_ingested(out, "a") == expected).all()


def test_a_label_larger_than_its_image_is_read_by_the_images_bounds(tmp_path):
    src = tmp_path / "src"
    _, mask = write_pair(src, "a", make_image(), make_labels())
    larger = np.random.default_rng(0).choice(np.array([0, 1, 2], np.uint8), (40, 44))
    write_array(mask, larger, UTM, _on_grid(-4, -6))
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)  # nothing of the image is unlabelled
        ingest_source(src, out, IngestOptions())
    assert (_ingested(out, "a") == larger[6:38, 4:36]).all()


@pytest.mark.parametrize("problem", ["pixel_size", "subpixel", "crs", "no_overlap", "flipped",
                                     "flipped_same_ground"])
def test_a_label_off_its_images_grid_is_refused_before_any_scene_is_written(tmp_path, problem):
    src = tmp_path / "src"
    write_pair(src, "a", make_image(), make_labels())
    image, mask = write_pair(src, "b", make_image(seed=1), make_labels())
    crs, data = UTM, make_labels(32 if problem == "flipped_same_ground" else 16)
    transform = {"pixel_size": _on_grid(0, 0, pixel=4.0), "subpixel": _on_grid(8.3, 0),
                 "crs": _on_grid(8, 0), "no_overlap": _on_grid(40, 0),
                 "flipped": _on_grid(0, 16) @ Affine.scale(1, -1),
                 # the image's size and ground, its rows from south to north
                 "flipped_same_ground": _on_grid(0, 32) @ Affine.scale(1, -1)}[problem]
    if problem == "crs":
        crs = "EPSG:32651"
    write_array(mask, data, crs, transform)
    file, img = re.escape(str(mask)), re.escape(str(image))
    expected = {
        "pixel_size": rf"{file}: its pixels are 4 x 4 metre, its image {img}'s 2 x 2 metre; "
                      "a label of other bounds than its image's must lie on its grid: "
                      "resample it onto the image's grid",
        "subpixel": rf"{file}: lies off its image {img}'s pixel grid by \+0\.30 px in x, "
                    r"\+0\.00 px in y \(more than 0\.05 px\)",
        "crs": rf"{file}: CRS EPSG:32651 differs from its image {img}'s EPSG:32650; "
               "reproject the label onto the image's grid",
        "no_overlap": rf"{file}: lies elsewhere than its image {img}: its bounds are offset by "
                      r"x \+80, y \+0 metre \(top left\) and x \+48, y \+32 metre \(bottom "
                      r"right\); it covers none of the image's ground",
        "flipped": rf"{file}: its grid is flipped upside down against its image {img}'s; "
                   "resample it onto the image's grid$",
        "flipped_same_ground": rf"{file}: its grid is flipped upside down against its image "
                               rf"{img}'s; resample it onto the image's grid$",
    }[problem]
    out = tmp_path / "out"
    with pytest.raises(DataError) as raised:
        ingest_source(src, out, IngestOptions())
    message = str(raised.value)
    assert re.match(f"^{expected}", message) and "\n" not in message, message
    assert not out.exists()  # refused in the survey, before any scene was written


def test_a_label_within_half_a_pixel_of_its_images_bounds_is_read_pixel_for_pixel(tmp_path):
    """The rule before other bounds were read: the same size, bounds within half a pixel."""
    src = tmp_path / "src"
    labels = make_labels(values=(0, 1))
    _, mask = write_pair(src, "a", make_image(), labels)
    write_array(mask, labels, UTM, _on_grid(0.45, -0.45))
    with warnings.catch_warnings():
        warnings.simplefilter("error", IngestWarning)
        ingest_source(src, tmp_path / "out", IngestOptions())
    assert (_ingested(tmp_path / "out", "a") == labels).all()


def test_a_window_the_label_misses_reads_as_no_label(tmp_path):
    path = tmp_path / "label.tif"
    values = np.arange(1, 13, dtype=np.uint8).reshape(3, 4)
    write_array(path, values, UTM, GRID)
    place = LabelPlace(col=2, row=1, width=4, height=3)  # the label's pixel 0, 0 is 2, 1
    with rasterio.open(path) as src:
        fmt = mask_format(src, path)
        outside = place.read(src, path, fmt, Window(0, 0, 2, 5))
        part = place.read(src, path, fmt, Window(1, 0, 3, 3))
        inside = place.read(src, path, fmt, Window(3, 2, 2, 2))
    assert np.isnan(outside).all()
    np.testing.assert_array_equal(part, [[np.nan] * 3, [np.nan, 1, 2], [np.nan, 5, 6]])
    assert inside.dtype == np.uint8 and inside.tolist() == [[6, 7], [10, 11]]
    rgb = tmp_path / "rgb.tif"
    write_array(rgb, np.stack([values] * 3), UTM, GRID)
    with rasterio.open(rgb) as src:
        codes = place.read(src, rgb, mask_format(src, rgb), Window(5, 3, 2, 2))
    assert codes.tolist() == [[0x0C0C0C, IGNORE_CODE], [IGNORE_CODE, IGNORE_CODE]]
    assert place.unlabelled(5, 5) == 25 - 3 * 3  # columns 2-4 (of 2-5), rows 1-3


@pytest.mark.parametrize("storage", ["tiles", "one_strip", "png"])
def test_a_label_over_max_pixels_is_read_when_the_blocks_its_image_needs_are_not(tmp_path,
                                                                                 storage):
    """Only the image's window of a larger label is read (the image is within max_pixels),
    but GDAL decodes whole blocks: a label stored as one block (a one-strip GeoTIFF, a PNG)
    over max_pixels would be decoded whole."""
    src = tmp_path / "src"
    _, mask = write_pair(src, "a", make_image(), make_labels())  # 1,024 pixels
    larger = np.random.default_rng(0).choice(np.array([0, 1, 2], np.uint8), (40, 44))
    if storage == "one_strip":
        write_array(mask, larger, UTM, _on_grid(-4, -6))
    else:
        mask.unlink()
        if storage == "png":
            mask = mask.with_suffix(".png")
        layout = {"tiles": dict(driver="GTiff", tiled=True, blockxsize=16, blockysize=16),
                  "png": dict(driver="PNG")}[storage]
        with rasterio.open(mask, "w", width=44, height=40, count=1, dtype="uint8", crs=UTM,
                           transform=_on_grid(-4, -6), **layout) as dst:
            dst.write(larger, 1)
    out = tmp_path / "out"
    if storage == "tiles":
        ingest_source(src, out, IngestOptions(max_pixels=1500))
        assert (_ingested(out, "a") == larger[6:38, 4:36]).all()
        return
    stored = ("a PNG is decoded whole" if storage == "png" else
              r"it is stored in blocks of 44x40 pixels \(1,760\), each decoded whole")
    with pytest.raises(DataError, match=rf"^{re.escape(str(mask))}: 44x40 pixels \(1,760\) is "
                                        rf"more than max_pixels \(1,500\), and {stored} to read "
                                        r"any part of it; crop it to its image, save it as a "
                                        r"tiled GeoTIFF \(gdal_translate -co TILED=YES\) or "
                                        r"raise max_pixels$"):
        ingest_source(src, out, IngestOptions(max_pixels=1500))
    assert not out.exists()
