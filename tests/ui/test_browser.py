"""The app in a real browser: `segpipe ui` on a real MLflow store, driven through Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from playwright.sync_api import expect

from tests.ui.harness import CLASS_NAMES, MAX_UPLOAD_MB, SCENE_CRS, write_scene

PREDICT_TIMEOUT_MS = 180_000  # the first prediction loads TensorFlow and the model


def _open(page, url: str):
    page.goto(url)
    page.get_by_role("heading", level=1).first.wait_for()
    return page


def _upload(page, ui_app, path: Path):
    _open(page, f"{ui_app.url}/predict")
    page.locator('input[type="file"]').set_input_files(str(path))


def _no_traceback(page) -> None:
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and 'File "' not in text, text[-2000:]


def _predict(page) -> None:
    page.get_by_role("button", name="Predict", exact=True).click()
    page.get_by_role("button", name="Download mask (GeoTIFF)").wait_for(
        timeout=PREDICT_TIMEOUT_MS)


def test_models_page_shows_the_champion(page, ui_app, tiny_store):
    page.set_viewport_size({"width": 1400, "height": 900})  # its screenshot shows the table
    _open(page, ui_app.url)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name=f"{tiny_store.name} v1 · champion")).to_be_visible()
    # The sidebar preselects the champion although v2 is newer.
    expect(page.get_by_role("combobox", name="Version")).to_have_value(
        "v1 · champion · mIoU 0.610")
    expect(main).to_contain_text("0.610")  # the champion's test mIoU, not v2's 0.550
    expect(main).to_contain_text("promoted: no champion yet")
    expect(main).to_contain_text("32 px")  # patch size, from the version's serving config
    legend = main.locator("table.segpipe-legend")
    for name in CLASS_NAMES:
        expect(legend).to_contain_text(name)
    _no_traceback(page)


@pytest.mark.slow
def test_upload_shows_mask_and_legend_and_downloads_a_geotiff(page, ui_app, scene_path,
                                                              tmp_path):
    _upload(page, ui_app, scene_path)
    page.get_by_text("scene.tif: 96×96 px, 4 bands, uint16, EPSG:32644").wait_for()
    _predict(page)
    legend = page.locator("table.segpipe-legend")
    legend.wait_for()
    text = legend.inner_text()
    for name in CLASS_NAMES:
        assert name in text
    assert "hectares" in text  # UTM: a projected CRS, so areas are in hectares
    assert page.get_by_role("img").count() >= 2  # the image and the mask over it

    with page.expect_download() as download:
        page.get_by_role("button", name="Download mask (GeoTIFF)").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "scene_mask.tif"
    with rasterio.open(scene_path) as src, rasterio.open(saved) as mask:
        assert mask.driver == "GTiff"
        assert mask.crs == src.crs == rasterio.crs.CRS.from_string(SCENE_CRS)
        assert mask.transform == src.transform
        assert (mask.width, mask.height, mask.count) == (src.width, src.height, 1)
        values = mask.read(1)
        nodata = src.read(1) == 0  # the scene's nodata strip
    assert np.all(values[nodata] == 255)
    assert set(np.unique(values[~nodata])) <= {0, 1, 2}

    with page.expect_download() as download:
        page.get_by_role("button", name="Download polygons (GeoJSON)").click()
    polygons = json.loads(Path(download.value.path()).read_text())
    assert polygons["crs"]["properties"]["name"].endswith("EPSG::32644")
    assert polygons["features"]
    assert {f["properties"]["class_name"] for f in polygons["features"]} <= set(CLASS_NAMES)

    page.get_by_text("Polygon options").click()
    page.get_by_text("Longitude/latitude (EPSG:4326), for web maps").click()
    page.get_by_text("Polygons in longitude/latitude (EPSG:4326).").wait_for()  # rerun done
    with page.expect_download() as download:
        page.get_by_role("button", name="Download polygons (GeoJSON)").click()
    web = json.loads(Path(download.value.path()).read_text())
    assert "crs" not in web  # RFC 7946
    lon, lat = web["features"][0]["geometry"]["coordinates"][0][0]
    assert 81 < lon < 83 and 24 < lat < 25
    _no_traceback(page)


def test_wrong_band_count_is_a_message(page, ui_app, tmp_path):
    three_bands = write_scene(tmp_path / "rgb.tif", 64, bands=3)
    _upload(page, ui_app, three_bands)
    page.get_by_text("rgb.tif: wrong band count: 3 bands, the model expects 4").wait_for()
    assert page.get_by_role("button", name="Predict", exact=True).count() == 0
    _no_traceback(page)


def test_an_8_bit_export_is_warned_about_before_predicting(page, ui_app, tmp_path):
    export = write_scene(tmp_path / "export8.tif", 64, dtype="uint8")
    _upload(page, ui_app, export)
    page.get_by_text("export8.tif is uint8, but the model was trained on float32 pixels "
                     "(band means 500)").wait_for()
    page.get_by_role("button", name="Predict", exact=True).wait_for()  # a warning, no refusal
    _no_traceback(page)


def test_upload_size_limit_is_shown_and_enforced(page, ui_app, tmp_path):
    big = tmp_path / "big.tif"
    big.write_bytes(b"\0" * (MAX_UPLOAD_MB * 1024 * 1024 + 1))
    _upload(page, ui_app, big)
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text(f"up to {MAX_UPLOAD_MB} MB")
    # Streamlit's own refusal is a tooltip of a red chip; the page says it in plain text.
    expect(main).to_contain_text(f"A file over {MAX_UPLOAD_MB} MB is refused: its chip turns "
                                 "red (hover it for the reason)")
    page.get_by_text(f"File must be {MAX_UPLOAD_MB}.0MB or smaller").wait_for()
    assert page.get_by_role("button", name="Predict", exact=True).count() == 0
    _no_traceback(page)


def test_undecodable_upload_is_a_message(page, ui_app, tmp_path):
    junk = tmp_path / "notes.tif"
    junk.write_bytes(b"field notes, not pixels\n" * 10)
    _upload(page, ui_app, junk)
    page.get_by_text("notes.tif: undecodable image, not a GeoTIFF, PNG or JPEG").wait_for()
    assert page.get_by_role("button", name="Predict", exact=True).count() == 0
    _no_traceback(page)


def test_scene_from_the_data_folder(page, ui_app):
    page.set_viewport_size({"width": 1400, "height": 900})  # a laptop's screen
    _open(page, f"{ui_app.url}/predict")
    page.get_by_text("Data folder").click()
    page.get_by_text("survey/field.tif: 64×64 px").wait_for()
    _predict(page)
    legend = page.locator("table.segpipe-legend")
    assert "hectares" in legend.inner_text()
    # The class/area table fits its column, hectares included.
    column = page.get_by_test_id("stColumn").filter(has=legend).last.bounding_box()
    table = legend.bounding_box()
    assert table["x"] + table["width"] <= column["x"] + column["width"] + 1, (table, column)
    _no_traceback(page)
    # The model loaded in the app: TensorFlow's start-up chatter stays off its console.
    console = ui_app.log_path.read_text(errors="replace")
    for chatter in ("cuInit", "oneDNN", "absl::InitializeLog"):
        assert chatter not in console, console[-2000:]
