"""Prediction at the model's training resolution, answered on the input's grid."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from serving.predict import ScenePredictor
from serving.resolution import ModelGrid, resample_factor, shrink_problem
from serving.scene import SceneError, predict_scene
from serving.windows import Block
from tests.serving.conftest import BANDS, make_config

HEIGHT, WIDTH, BORDER = 96, 128, 6
SLOPE = 10.0  # raw units per input pixel on the left half: 0.05 z-scores, 0.1 at scale 0.5
THRESHOLD = 0.075  # z-score step between neighbours the model calls "steep"


def slope_model(batch: np.ndarray) -> np.ndarray:
    """A "network trained at scale 0.5": class 1 (steep) where band 0 rises by more than
    THRESHOLD z-scores from one pixel to the next, class 0 (flat) elsewhere. Fed native
    pixels, the left half's ramp looks half as steep and comes out flat."""
    step = np.abs(np.diff(batch[..., 0], axis=2))
    step = np.concatenate([step, step[:, :, -1:]], axis=2)
    logits = np.stack([50 * (THRESHOLD - step), 50 * (step - THRESHOLD),
                       np.full_like(step, -50.0)], axis=-1)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    return (exp / exp.sum(-1, keepdims=True)).astype(np.float32)


def slope_scene() -> np.ndarray:
    """(H, W, C) float32: a ramp on the left half, flat on the right, a nodata border."""
    image = np.full((HEIGHT, WIDTH, BANDS), 500.0, np.float32)
    ramp = 200.0 + SLOPE * np.arange(WIDTH // 2, dtype=np.float32)
    image[:, :WIDTH // 2, 0] = ramp
    image[:, :BORDER] = 0.0  # nodata
    return image


def write_geotiff(path, image: np.ndarray, pixel: float = 0.5, crs: str = "EPSG:32644",
                  nodata: float = 0):
    profile = dict(driver="GTiff", width=image.shape[1], height=image.shape[0], count=BANDS,
                   dtype=image.dtype.name, crs=crs, nodata=nodata,
                   transform=from_origin(600000.0, 2700000.0, pixel, pixel))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    return path


def truth() -> np.ndarray:
    """What the model means: steep on the left, flat on the right, ignored on the border."""
    expected = np.zeros((HEIGHT, WIDTH), np.uint8)
    expected[:, :WIDTH // 2] = 1
    expected[:, :BORDER] = 255
    return expected


def accuracy(mask: np.ndarray) -> float:
    """Share of right answers away from the ramp's edges (where both resolutions see a jump
    between neighbours) and the nodata border."""
    keep = np.ones((HEIGHT, WIDTH), bool)
    keep[:, :BORDER + 4] = False
    keep[:, WIDTH // 2 - 4:WIDTH // 2 + 4] = False
    return float((mask[keep] == truth()[keep]).mean())


@pytest.mark.parametrize("resolution", [{"scale": 0.5}, {"gsd": 1.0}])
def test_scene_is_predicted_at_the_training_resolution_on_its_own_grid(tmp_path, resolution):
    scene = write_geotiff(tmp_path / "scene.tif", slope_scene())
    trained_at_half = ScenePredictor(slope_model, make_config(**resolution))
    native = ScenePredictor(slope_model, make_config())
    predict_scene(trained_at_half, scene, tmp_path / "resampled.tif")
    predict_scene(native, scene, tmp_path / "native.tif")
    with rasterio.open(scene) as src, rasterio.open(tmp_path / "resampled.tif") as out, \
            rasterio.open(tmp_path / "native.tif") as naive:
        assert out.shape == src.shape == (HEIGHT, WIDTH)
        assert out.crs == src.crs and out.transform == src.transform
        mask, naive_mask = out.read(1), naive.read(1)
    assert accuracy(mask) > 0.99
    assert accuracy(naive_mask) < 0.6  # native pixels: the ramp comes out flat
    np.testing.assert_array_equal(mask[:, :BORDER], 255)  # nodata on the input's own grid
    assert (mask[:, BORDER:] < 3).all()


def test_array_route_resamples_like_the_scene_route(tmp_path):
    image = slope_scene()
    predictor = ScenePredictor(slope_model, make_config(scale=0.5))
    scene = write_geotiff(tmp_path / "scene.tif", image)
    predict_scene(predictor, scene, tmp_path / "mask.tif")
    mask = predictor.predict_array(image, nodata=0)
    with rasterio.open(tmp_path / "mask.tif") as out:
        np.testing.assert_array_equal(mask, out.read(1))
    probs = predictor.predict_array(image, nodata=0, output="probabilities")
    assert probs.shape == (HEIGHT, WIDTH, 3) and np.isfinite(probs).all()
    np.testing.assert_array_equal(probs[:, :BORDER], 0.0)  # ignored pixels
    np.testing.assert_array_equal(np.argmax(probs[:, BORDER:], -1), mask[:, BORDER:])
    assert accuracy(mask) > 0.99
    assert accuracy(predictor.predict_array(image, nodata=0, resample=False)) < 0.6


def test_nan_in_an_array_is_resampled_as_a_files_nodata(tmp_path):
    """Invalid pixels sent as NaN (an array from a scene with nodata) stay out of their
    neighbours' resampled values, as a GeoTIFF's nodata does; NaN inside Lanczos' kernel
    would blank the model pixels around a hole."""
    image = slope_scene()
    image[:, :BORDER] = np.nan
    image[40:52, 20:30] = np.nan  # a hole in the ramp
    predictor = ScenePredictor(slope_model, make_config(scale=0.5, nodata=None))
    scene = write_geotiff(tmp_path / "scene.tif", image, nodata=float("nan"))
    predict_scene(predictor, scene, tmp_path / "mask.tif")
    with rasterio.open(tmp_path / "mask.tif") as out:
        np.testing.assert_array_equal(predictor.predict_array(image), out.read(1))


def test_region_is_resampled_and_georeferenced(tmp_path):
    scene = write_geotiff(tmp_path / "scene.tif", slope_scene())
    predictor = ScenePredictor(slope_model, make_config(gsd=1.0))
    region = rasterio.windows.Window(10, 20, 50, 37)
    predict_scene(predictor, scene, tmp_path / "r.tif", region=region)
    with rasterio.open(scene) as src, rasterio.open(tmp_path / "r.tif") as out:
        assert out.shape == (37, 50) and out.transform == src.window_transform(region)
        assert (out.read(1)[:, :40] == 1).mean() > 0.95  # cols 10..50 of the ramp


def test_scene_too_large_at_the_model_resolution_is_refused(tmp_path):
    scene = write_geotiff(tmp_path / "scene.tif", slope_scene())
    predictor = ScenePredictor(slope_model, make_config(scale=4.0))
    with pytest.raises(SceneError, match=r"scene.tif: too many pixels: 128x96 \(512x384 at"):
        predict_scene(predictor, scene, tmp_path / "m.tif", max_pixels=100_000)
    assert not (tmp_path / "m.tif").exists()


@pytest.mark.parametrize(("height", "width", "scale", "refused"), [
    (1, 64, 0.5, False),  # a 1-pixel strip: one model row, the strip averaged into it
    (3, 64, 0.3, False),  # 0.9 of a pixel: rounds to one
    (1, 64, 0.49, True),  # under half a pixel: the model would see it over twice its size
    (48, 64, 0.0005, True),  # 1 mm pixels for a model trained at 2 m
])
def test_an_input_is_refused_only_under_half_a_model_pixel_a_side(height, width, scale,
                                                                 refused):
    grid = ModelGrid(height, width, scale)
    problem = shrink_problem(make_config(scale=scale), grid)
    assert grid.rows == 1  # the grid keeps one pixel: what decides is how much ground it holds
    assert (problem == f"the input ({width}x{height}) shrinks to under half a pixel a side at "
                       f"the model's resolution (the model's scale {scale:g})"
            if refused else problem is None)


@pytest.mark.parametrize("side", [1, 3, 48, 96, 1000, 4097])
@pytest.mark.parametrize("gsd", [0.3, 1.0, 2.0, 10.0])
def test_the_smallest_pixel_size_a_refusal_names_is_taken(side, gsd):
    config = make_config(gsd=gsd)
    refused = shrink_problem(config, ModelGrid(side, side, 1e-9 / gsd), size=1e-9)
    smallest = float(refused.rsplit(" is ", 1)[1].removesuffix(" m per pixel"))
    assert shrink_problem(config, ModelGrid(side, side, smallest / gsd), size=smallest) is None
    half_a_pixel = gsd / side / 2  # the input's side spans half a model pixel
    assert half_a_pixel <= smallest < half_a_pixel * 1.001  # rounded up to 4 digits
    below = half_a_pixel * (1 - 1e-6)
    assert shrink_problem(config, ModelGrid(side, side, below / gsd), size=below) is not None


@pytest.mark.parametrize(("crs", "pixel", "expected"), [
    ("EPSG:32644", 0.5, 0.5),  # UTM metres
    ("EPSG:2263", 1.0, 0.3048),  # New York State Plane, US feet
    ("EPSG:4326", 0.00001, 0.25),  # degrees: gsd cannot apply, scale does
    (None, 1.0, 0.25),
])
def test_factor_comes_from_gsd_in_projected_crs_else_scale(tmp_path, crs, pixel, expected):
    path = write_geotiff(tmp_path / "x.tif", np.ones((4, 4, BANDS), np.float32), pixel, crs)
    config = make_config(gsd=1.0, scale=0.25)
    with rasterio.open(path) as src:
        assert resample_factor(config, src) == pytest.approx(expected, rel=1e-4)
    assert resample_factor(config, None) == 0.25


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (50, 70), (97, 61)])
@pytest.mark.parametrize("factor", [0.5, 0.37, 1.0, 1.6, 3.0])
def test_model_grid_blocks_cover_every_input_pixel_once(shape, factor):
    grid = ModelGrid(*shape, factor)
    seen = np.zeros(shape, int)
    step = 7
    for r in range(0, grid.rows, step):
        for c in range(0, grid.cols, step + 4):
            h, w = min(step, grid.rows - r), min(step + 4, grid.cols - c)
            ids = (np.arange(r, r + h)[:, None] * grid.cols + np.arange(c, c + w))[..., None]
            block = Block(r, c, ids.astype(np.float32), np.ones(h, np.float32),
                          np.ones(w, np.float32), np.zeros((h, w), bool))
            mapped = grid.to_input(block, lambda r0, r1, c0, c1: np.zeros((r1 - r0, c1 - c0)))
            if mapped is None:
                continue
            mh, mw = mapped.weight.shape
            seen[mapped.row:mapped.row + mh, mapped.col:mapped.col + mw] += 1
            # each input pixel takes the model pixel its centre falls in
            rows = np.minimum(((np.arange(mh) + mapped.row + 0.5) * grid.rows / shape[0])
                              .astype(int), grid.rows - 1)
            cols = np.minimum(((np.arange(mw) + mapped.col + 0.5) * grid.cols / shape[1])
                              .astype(int), grid.cols - 1)
            np.testing.assert_array_equal(mapped.weighted[..., 0],
                                          rows[:, None] * grid.cols + cols)
    assert (seen == 1).all()
