"""An image with a pixel size but no CRS (a PNG with its world file, a GeoTIFF with a
geotransform only): the warning says only the CRS is missing, and the pixel size may be
given as on the server (``segpipe predict --pixel-size``, serving.decode's pixel_size)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from typer.testing import CliRunner

from pipelines.cli import app
from serving.predict import ScenePredictor
from serving.scene import SceneError, check_scene, predict_scene
from tests.serving.conftest import bright_model, rgb_config, write_scene

SIZE = 40
ORIGIN = from_origin(616151.0, 3e6, 1, 1)


def rgb_scene(path, driver: str, crs: str | None = None) -> None:
    """40 x 40 1 m RGB pixels at the same origin; a PNG's in a world file, as GIS export it."""
    pixels = np.random.default_rng(2).integers(1, 1000, (3, SIZE, SIZE)).astype("uint16")
    georef = {} if driver == "PNG" else {"crs": crs, "transform": ORIGIN}
    with rasterio.open(path, "w", driver=driver, width=SIZE, height=SIZE, count=3,
                       dtype="uint16", **georef) as dst:
        dst.write(pixels)
    if driver == "PNG":  # pixel sizes, rotations, then the first pixel's centre
        path.with_suffix(".pgw").write_text(
            f"1\n0\n0\n-1\n{ORIGIN.c + 0.5}\n{ORIGIN.f - 0.5}\n")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_png_with_a_world_file_is_said_to_lack_only_its_crs(tmp_path):
    config = rgb_config(gsd=2.0)
    png = tmp_path / "chip.png"
    rgb_scene(png, "PNG")
    assert png.with_suffix(".pgw").exists()
    notes = check_scene(png, config)
    assert notes.resampling is None
    assert notes.warnings[0] == (
        f"{png} has a pixel size (1 per pixel, from its world file) but no CRS, so its units "
        f"are unknown: it is predicted at its own pixel size, not at the 2 m per pixel the "
        f"model was trained at; if they are metres, give --pixel-size 1; or add its CRS "
        f"(gdal_translate -a_srs EPSG:<code> to a GeoTIFF: GDAL reads no .prj beside a PNG or "
        f"JPEG) to have it resampled")
    given = check_scene(png, config, pixel_size=1.0)
    assert given.warnings == []
    assert given.resampling == "resampled 1 m -> 2 m (model grid 20x20) and back"


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_pixel_size_given_predicts_as_the_georeferenced_scene(tmp_path):
    predictor = ScenePredictor(bright_model, rgb_config(gsd=2.0))
    rgb_scene(tmp_path / "chip.png", "PNG")
    rgb_scene(tmp_path / "utm.tif", "GTiff", crs="EPSG:32650")
    masks = {}
    for name, size in (("chip.png", 1.0), ("utm.tif", None)):
        predict_scene(predictor, tmp_path / name, tmp_path / f"{name}.mask.tif",
                      pixel_size=size)
        with rasterio.open(tmp_path / f"{name}.mask.tif") as mask:
            masks[name] = mask.read(1)
    np.testing.assert_array_equal(masks["chip.png"], masks["utm.tif"])
    predict_scene(predictor, tmp_path / "chip.png", tmp_path / "own.tif")
    with rasterio.open(tmp_path / "own.tif") as mask:
        assert (mask.read(1) != masks["utm.tif"]).any()  # not resampled without it


def test_cli_pixel_size_resamples_a_scene_without_crs(logged_model, tmp_path):
    """The logged model was trained at 1 m; its 0.5 m scene without CRS, given --pixel-size
    0.5, gives the mask of the same scene in UTM."""
    utm = write_scene(tmp_path / "utm.tif", height=40, width=48)
    with rasterio.open(utm) as src:
        profile, pixels = src.profile, src.read()
    profile.pop("crs")
    with rasterio.open(tmp_path / "plain.tif", "w", **profile) as dst:
        dst.write(pixels)
    model = ["--model-uri", logged_model["local_path"]]
    runner = CliRunner()
    for name, extra in (("utm.tif", []), ("plain.tif", ["--pixel-size", "0.5"])):
        result = runner.invoke(app, ["predict", str(tmp_path / name), "--out",
                                     str(tmp_path / f"{name}.mask.tif"), *model, *extra])
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output, result.output
        assert "resampled 0.5 m -> 1 m" in result.output, result.output
    with rasterio.open(tmp_path / "utm.tif.mask.tif") as a, \
            rasterio.open(tmp_path / "plain.tif.mask.tif") as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    refused = runner.invoke(app, ["predict", str(tmp_path / "plain.tif"), "--out",
                                  str(tmp_path / "x.tif"), *model, "--pixel-size", "0"])
    assert refused.exit_code == 2
    text = "".join(refused.output.replace("│", "").split())  # rich wraps it in a box
    assert "'--pixel-size':mustbeapositivenumberofmetres,got0.0" in text, refused.output


def test_a_geotiff_with_a_world_file_or_a_geotransform_says_which(tmp_path):
    config = rgb_config(gsd=2.0)
    inside = tmp_path / "inside.tif"
    with rasterio.open(inside, "w", driver="GTiff", width=SIZE, height=SIZE, count=3,
                       dtype="uint16", transform=ORIGIN) as dst:
        dst.write(np.ones((3, SIZE, SIZE), "uint16"))
    assert "(1 per pixel, from its geotransform) but no CRS" in \
        check_scene(inside, config).warnings[0]
    beside = tmp_path / "beside.png"
    rgb_scene(beside, "PNG")
    assert "(1 per pixel, from its world file) but no CRS" in \
        check_scene(beside, config).warnings[0]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_pixel_size_that_cannot_apply_or_is_implausible_is_said(tmp_path):
    """Ignored for a projected scene or a model without gsd; doubted when it enlarges the
    scene over ten times; and the errors name the flag, with readable numbers."""
    rgb_scene(tmp_path / "utm.tif", "GTiff", crs="EPSG:32650")
    rgb_scene(tmp_path / "chip.png", "PNG")
    at_2m = rgb_config(gsd=2.0)
    assert check_scene(tmp_path / "utm.tif", at_2m, pixel_size=1.0).warnings[0] == (
        f"--pixel-size 1 ignored: {tmp_path / 'utm.tif'} is in EPSG:32650 at 1 m per pixel, "
        f"which counts")
    assert check_scene(tmp_path / "chip.png", rgb_config(), pixel_size=1.0).warnings[0] \
        .startswith("--pixel-size 1 ignored: the model knows no training resolution")
    notes = check_scene(tmp_path / "chip.png", at_2m, pixel_size=1000.0)
    assert notes.warnings[0].startswith(f"--pixel-size 1000: {tmp_path / 'chip.png'} is "
                                        f"enlarged 500 times")
    with pytest.raises(SceneError, match=r"chip.png: --pixel-size 1e-09: the scene \(40x40\) "
                                         r"shrinks.* is 0\.025 m per pixel$"):
        check_scene(tmp_path / "chip.png", at_2m, pixel_size=1e-9)
    with pytest.raises(SceneError, match=r"chip.png: too many pixels: 40x40 \(2e\+301x2e\+301 "
                                         r"at the model's resolution\), the limit is"):
        check_scene(tmp_path / "chip.png", at_2m, pixel_size=1e300)
