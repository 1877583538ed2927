"""The tiles' resolution: recorded in tiles.json and the served model's config when the
scenes have one, and said once at tiling when georeferenced scenes have none."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from components.artifacts import ClassInfo, ClassMap, TileManifest, TrainedModelInfo
from components.dataset_paths import PreparedDataset
from components.prepare import PrepareOptions, prepare_dataset
from components.raster import write_array
from components.register import RegisterOptions, serving_config
from components.tile import TileOptions, tile_scenes
from components.tile_resolution import ResolutionWarning
from tests.components.conftest import UTM, make_image, make_labels
from tests.logged_models import save_known_model


def _ingested(tmp_path, scenes: dict[str, tuple[float, str | None]], size: int = 32):
    """An ingest step's output: ``scenes`` name -> (pixel size, CRS) of ``size`` px."""
    root = tmp_path / "ingested"
    (root / "scenes").mkdir(parents=True)
    for i, (name, (pixel, crs)) in enumerate(scenes.items()):
        transform = from_origin(600000.0 + i * 1000, 3000000.0, pixel, pixel) if crs else \
            rasterio.Affine.identity()
        write_array(root / "scenes" / f"{name}_image.tif", make_image(size, seed=i), crs,
                    transform)
        write_array(root / "scenes" / f"{name}_mask.tif", make_labels(size, (0, 1)), crs,
                    transform, 255)
    ClassMap(classes=[ClassInfo(id=i, name=f"c{i}", color="#000000") for i in range(2)]
             ).save(root / "classes.json")
    return root


def _tile(tmp_path, root, options: TileOptions) -> tuple[TileManifest, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = tile_scenes(root, tmp_path / "tiled", options)
    said = [str(w.message) for w in caught if issubclass(w.category, ResolutionWarning)]
    return manifest, said


@pytest.mark.parametrize(("pixels", "scale", "gsd"), [
    ((2.0, 2.0), 1.0, 2.0),
    ((2.0, 2.0), 0.5, 4.0),  # tiles of 2 m scenes at half their pixels are 4 m tiles
    ((2.0, 2.0004), 1.0, 2.0),  # scenes warped one by one: a few parts in 10,000 apart
])
def test_one_pixel_size_in_a_projected_crs_is_the_tiles_gsd(tmp_path, pixels, scale, gsd):
    root = _ingested(tmp_path, {f"s{i}": (p, UTM) for i, p in enumerate(pixels)})
    manifest, said = _tile(tmp_path, root, TileOptions(patch_size=16, scale=scale))
    assert manifest.gsd == gsd and manifest.target_gsd is None and not said
    assert json.loads((tmp_path / "tiled/tiles.json").read_text())["gsd"] == gsd


def test_target_gsd_is_the_tiles_gsd(tmp_path):
    root = _ingested(tmp_path, {"fine": (1.0, UTM), "coarse": (4.0, UTM)})
    manifest, said = _tile(tmp_path, root, TileOptions(patch_size=16, target_gsd=2.0))
    assert manifest.gsd == 2.0 and not said


def test_scenes_of_different_pixel_sizes_record_none_and_say_so_once(tmp_path):
    root = _ingested(tmp_path, {"a": (1.0, UTM), "b": (2.0, UTM), "c": (2.0, UTM)})
    manifest, said = _tile(tmp_path, root, TileOptions(patch_size=16))
    assert manifest.gsd is None
    assert len(said) == 1
    assert said[0].startswith("the scenes' pixel sizes differ (1 to 2 m per tile pixel)")
    assert "set tile.target_gsd" in said[0]


@pytest.mark.parametrize(("scenes", "message"), [
    ({"a": (0.00002, "EPSG:4326"), "b": (0.00002, "EPSG:4326")}, None),  # degrees
    ({"a": (1.0, None), "b": (1.0, None)}, None),  # plain images: no size in metres
    ({"a": (2.0, UTM), "b": (1.0, None)}, "1 of 2 scenes (scene b) have no projected CRS"),
])
def test_scenes_without_metres_record_none(tmp_path, scenes, message):
    root = _ingested(tmp_path, scenes)
    manifest, said = _tile(tmp_path, root, TileOptions(patch_size=16))
    assert manifest.gsd is None
    assert [m[:len(message)] for m in said] == ([message] if message else [])


def test_a_manifest_written_before_gsd_was_recorded_reads_as_before(tmp_path):
    root = _ingested(tmp_path, {"a": (2.0, UTM)})
    manifest, _ = _tile(tmp_path, root, TileOptions(patch_size=16, target_gsd=2.0))
    older = manifest.model_dump(mode="json", exclude={"gsd"})
    assert TileManifest.model_validate(older).gsd == 2.0  # target_gsd was its resolution
    assert TileManifest.model_validate({**older, "target_gsd": None}).gsd is None


def test_the_served_model_gets_the_training_resolution(binary_source, tmp_path):
    """tea-plantations' layout (4-band int16 chips at 2 m in UTM) prepared with the default
    tile options: the model registered from it resamples inputs to 2 m."""
    dataset = PreparedDataset(prepare_dataset(binary_source, tmp_path / "dataset", PrepareOptions(
        tile=TileOptions(patch_size=16), split={"strategy": "scene"})).dataset_dir)
    model = save_known_model(tmp_path / "model", classes=2, patch_size=16)
    config = serving_config(TrainedModelInfo.load(model / "model.json"), dataset,
                            RegisterOptions())
    assert (config.gsd, config.scale) == (2.0, 1.0)


RAMP = 8.0  # raw units per 2 m along x on the left half of a slope scene


def _slope_scene(pixel: float) -> tuple[np.ndarray, np.ndarray]:
    """(4, H, W) float32 image and its mask of 128 m square: band 0 climbs RAMP per 2 m on
    the left half (class 1, "steep") and is flat on the right (class 0); bands 1-3 noise."""
    size = round(128 / pixel)
    x = (np.arange(size) + 0.5) * pixel  # metres from the left edge, pixel centres
    band0 = 1000.0 + RAMP / 2.0 * np.minimum(x, 64.0)
    image = np.random.default_rng(size).normal(500.0, 50.0, (4, size, size))
    image[0] = band0[None, :]
    mask = np.broadcast_to((x < 64.0).astype(np.uint8), (size, size)).copy()
    return image.astype(np.float32), mask


def _write_slope_scenes(folder, pixel: float, names: list[str]) -> None:
    image, mask = _slope_scene(pixel)
    for i, name in enumerate(names):
        transform = from_origin(600000.0 + i * 1000, 3000000.0, pixel, pixel)
        write_array(folder / "images" / f"{name}.tif", image, UTM, transform)
        write_array(folder / "masks" / f"{name}.tif", mask, UTM, transform)


def _save_slope_model(folder, step: float) -> None:
    """A network "trained at 2 m": class 1 where band 0's normalized central difference
    along x passes 0.75 ``step`` (the step it makes per 2 m pixel), class 0 where it is
    flat. Fed 1 m pixels, the ramp climbs half as much per pixel and looks flat."""
    import keras

    inputs = keras.Input((None, None, 4))
    difference = keras.layers.Conv2D(2, (1, 3), padding="same", use_bias=False)
    logits = keras.layers.Conv2D(2, 1)
    outputs = keras.layers.Softmax()(logits(keras.layers.ReLU()(difference(inputs))))
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((1, 3, 4, 2), np.float32)
    kernel[0, :, 0, 0] = [-0.5, 0.0, 0.5]  # rising, and falling: |d| = relu(d) + relu(-d)
    kernel[0, :, 0, 1] = [0.5, 0.0, -0.5]
    difference.set_weights([kernel])
    sharp, threshold = 40.0 / step, 0.75 * step
    logits.set_weights([np.array([[[[-sharp, sharp], [-sharp, sharp]]]], np.float32),
                        np.array([sharp * threshold, -sharp * threshold], np.float32)])
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    TrainedModelInfo(architecture="unet", params={"depth": 1, "filters": 4}, num_classes=2,
                     in_channels=4, patch_size=32).save(folder / "model.json")


def _agreement(fine, coarse) -> float:
    """Share of 2 m pixels whose class the 1 m mask gives the 1 m pixel at its corner, away
    from the scene's edges and the ramp's end."""
    keep = np.ones(coarse.shape, bool)
    keep[:, :2] = keep[:, -2:] = keep[:, 30:34] = False
    return float((fine[::2, ::2] == coarse)[keep].mean())


@pytest.mark.slow
@pytest.mark.usefixtures("mlflow_store")
def test_a_model_trained_at_2_m_predicts_and_scores_a_1_m_scene_at_2_m(tmp_path):
    """Registered from 2 m scenes with the default tile options, the model reads a 1 m
    scene at 2 m: its mask agrees with the 2 m scene's, and `segpipe evaluate` of 1 m scenes
    scores it as high, scenes and tiles. The same network registered without a gsd (as older
    segpipe registered it) predicts the 1 m scene at 1 m, as it always did."""
    import mlflow

    from components.evaluate_logged import evaluate_logged_model
    from components.evaluate_options import EvaluateOptions
    from serving.pyfunc import load_predictor, log_segmentation_model
    from serving.scene import predict_scene

    _write_slope_scenes(tmp_path / "train", 2.0, ["a", "b", "c"])
    dataset = PreparedDataset(prepare_dataset(tmp_path / "train", tmp_path / "dataset",
                                              PrepareOptions(tile=TileOptions(patch_size=32),
                                                             split={"strategy": "random"})
                                              ).dataset_dir)
    step = RAMP / dataset.norm_stats.std[0]
    _save_slope_model(tmp_path / "model", step)
    config = serving_config(TrainedModelInfo.load(tmp_path / "model/model.json"), dataset,
                            RegisterOptions())
    assert config.gsd == 2.0
    mlflow.set_experiment("tile-resolution")
    uris = {}
    with mlflow.start_run():
        for name, gsd in (("slope-2m", 2.0), ("slope-older", None)):
            logged = log_segmentation_model(
                tmp_path / "model/model.keras", config.model_copy(update={"gsd": gsd}),
                name=name, registered_model_name=name)
            uris[name] = f"models:/{name}/{logged.registered_model_version}"
    scenes = tmp_path / "scenes"
    for pixel in (1.0, 2.0):
        image, _ = _slope_scene(pixel)
        write_array(scenes / f"{pixel:g}m.tif", image, UTM,
                    from_origin(700000.0, 3000000.0, pixel, pixel))
    masks = {}
    for name, uri in uris.items():
        predictor = load_predictor(uri)
        for pixel in ("1m", "2m"):
            out = tmp_path / f"{name}-{pixel}.tif"
            predict_scene(predictor, scenes / f"{pixel}.tif", out)
            with rasterio.open(out) as mask:
                masks[name, pixel] = mask.read(1)
    assert masks["slope-2m", "1m"].shape == (128, 128)  # answered on the input's grid
    assert _agreement(masks["slope-2m", "1m"], masks["slope-2m", "2m"]) > 0.97
    np.testing.assert_array_equal(masks["slope-older", "2m"], masks["slope-2m", "2m"])
    assert _agreement(masks["slope-older", "1m"], masks["slope-older", "2m"]) < 0.7

    _write_slope_scenes(tmp_path / "fine", 1.0, ["d", "e"])
    scores = {name: evaluate_logged_model(uri, str(tmp_path / "fine"), tmp_path / name,
                                          EvaluateOptions(overlay_tiles=0)).metrics
              for name, uri in uris.items()}
    assert scores["slope-2m"]["miou"] > 0.9 and scores["slope-2m"]["tile_miou"] > 0.9
    assert scores["slope-older"]["miou"] < 0.6 and scores["slope-older"]["tile_miou"] < 0.6
