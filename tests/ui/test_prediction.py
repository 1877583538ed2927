"""Prediction through serving/, as `segpipe predict` does it, into files the page offers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from pipelines.ui.areas import mask_pixel_area
from pipelines.ui.prediction import (
    PredictOptions,
    check_model_server,
    gate_note,
    local_predictor,
    map_unit,
    new_result_dir,
    pixel_size_field,
    polygons_caption,
    polygons_geojson,
    remote_predictor,
    run_prediction,
    scene_notes,
)
from pipelines.ui.registry import VersionSummary
from pipelines.ui.render import read_mask
from pipelines.ui.settings import UiError
from serving.polygons import PolygonOptions
from serving.predict import ScenePredictor
from serving.quiet import plain_images_quiet
from serving.scene import predict_scene
from tests.ui.harness import CLASS_NAMES, free_port, serving_config, write_scene


@pytest.fixture(scope="module")
def predictor(tiny_store):
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tiny_store.tracking_uri)
    try:
        yield local_predictor(f"models:/{tiny_store.name}/1")
    finally:
        mlflow.set_tracking_uri(previous)


def test_mask_equals_segpipe_predicts_and_keeps_the_georeference(predictor, tmp_path):
    scene = write_scene(tmp_path / "upload.tif", 80, seed=1)
    done = []
    result = run_prediction(predictor, scene, "field.tif", new_result_dir(tmp_path / "s"),
                            PredictOptions(tta=True, overlap=0.25),
                            progress=lambda d, t: done.append((d, t)))
    assert done[-1] == (80 * 80, 80 * 80)
    reference = predict_scene(predictor, scene, tmp_path / "cli.tif", tta=True, overlap=0.25)
    with rasterio.open(result.mask_path) as ours, rasterio.open(reference.mask_path) as cli, \
            rasterio.open(scene) as src:
        np.testing.assert_array_equal(ours.read(1), cli.read(1))
        assert ours.crs == src.crs and ours.transform == src.transform
    assert result.class_pixels == reference.class_pixels
    assert result.class_pixels["ignored"] == 80 * 5  # the scene's nodata strip

    geojson = json.loads(polygons_geojson(result.mask_path, CLASS_NAMES, 255))
    assert geojson["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32644"
    assert {f["properties"]["class_name"] for f in geojson["features"]} <= set(CLASS_NAMES)
    assert map_unit(result.mask_path) == ("m", True)
    options = PolygonOptions(classes=("tea",), min_area=1.0, crs="EPSG:4326")
    web = json.loads(polygons_geojson(result.mask_path, CLASS_NAMES, 255, options))
    assert "crs" not in web and web["features"]
    assert {f["properties"]["class_name"] for f in web["features"]} == {"tea"}
    lon, lat = web["features"][0]["geometry"]["coordinates"][0][0]
    assert 81 < lon < 83 and 24 < lat < 25
    # the default file is still the one asked for first
    assert json.loads(polygons_geojson(result.mask_path, CLASS_NAMES, 255)) == geojson


def test_scene_errors_name_the_users_file(predictor, tmp_path):
    three = write_scene(tmp_path / "upload-123.tif", 32, bands=3)
    with pytest.raises(UiError, match=r"^rgb\.tif: wrong band count") as error:
        run_prediction(predictor, three, "rgb.tif", tmp_path, PredictOptions())
    assert "upload-123" not in str(error.value)


def test_truncated_scene_error_names_the_users_file_in_gdals_detail_too(predictor, tmp_path):
    scene = write_scene(tmp_path / "upload.tif", 96, seed=4)
    data = scene.read_bytes()
    scene.write_bytes(data[: len(data) // 2])
    with pytest.raises(UiError, match=r"^myupload\.tif: cannot read pixels") as error:
        run_prediction(predictor, scene, "myupload.tif", tmp_path / "out", PredictOptions())
    message = str(error.value)
    assert "myupload.tif, band" in message  # GDAL's detail, with the user's name
    assert "upload.tif" not in message.replace("myupload.tif", "")
    assert str(tmp_path) not in message


def test_unreachable_model_server_is_a_message(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    remote = remote_predictor(endpoint, serving_config(), tta=False)
    scene = write_scene(tmp_path / "scene.tif", 32)
    with pytest.raises(UiError, match=f"^model server: endpoint {endpoint}/invocations is not "
                       r"reachable \(connection refused or host not found\)"):
        run_prediction(remote, scene, "scene.tif", tmp_path, PredictOptions(endpoint=endpoint))


def test_a_session_keeps_one_result_on_disk(tmp_path):
    first = new_result_dir(tmp_path)
    (first / "mask.tif").write_bytes(b"x")
    (tmp_path / "upload").mkdir()
    second = new_result_dir(tmp_path)
    assert not first.exists() and second.is_dir() and (tmp_path / "upload").is_dir()


def log_other_model(tmp_path) -> str:
    """Another logged model (other class names) in the active store, not registered."""
    import mlflow

    from segmodels import build_model
    from serving.pyfunc import log_segmentation_model

    path = tmp_path / "other.keras"
    build_model("unet", num_classes=3, in_channels=4, depth=2, filters=2).save(path)
    config = serving_config().model_copy(update={"class_names": ["a", "b", "c"]})
    # Named: the active experiment may be one an earlier test set in another store.
    mlflow.set_experiment("other-models")
    with mlflow.start_run(run_name="other"):
        return f"runs:/{log_segmentation_model(path, config).run_id}/model"


def test_model_server_gives_the_in_app_mask(predictor, tracking_store, tmp_path):
    """Windows sent to a real scoring server (which does the flips) blend into the mask the
    model gives in the app, TTA included; the server must run the sidebar's version."""
    from tests.serving.server import segpipe_serve

    model_uri = f"models:/{tracking_store.name}/1"
    server = segpipe_serve(model_uri, free_port(), tmp_path / "server.log",
                           MLFLOW_TRACKING_URI=tracking_store.tracking_uri).wait_ready()
    try:
        assert check_model_server(server.url, model_uri) is None
        # v2 is the same logged model as v1 (the harness registers it twice)
        assert check_model_server(server.url, f"models:/{tracking_store.name}/2") is None
        other = log_other_model(tmp_path)
        with pytest.raises(UiError, match=rf"^model server: endpoint {server.url} serves "
                           rf"{model_uri} \(logged model m-\w+, run \w+\), not "
                           rf"{other} .*: classes \['soil', 'tea', 'water'\] there, "
                           r"\['a', 'b', 'c'\] here; pick the server's model in the sidebar"):
            check_model_server(server.url, other)
        scene = write_scene(tmp_path / "scene.tif", 64, seed=2)
        options = PredictOptions(tta=True, overlap=0.5)
        here = run_prediction(predictor, scene, "scene.tif", tmp_path / "here", options)
        remote = remote_predictor(server.url, predictor.config, tta=True)
        there = run_prediction(remote, scene, "scene.tif", tmp_path / "there",
                               PredictOptions(tta=True, overlap=0.5, endpoint=server.url))
        # a float scene declaring nodata NaN, its 0 pixels (the model's nodata) valid
        nan_scene = nan_nodata_scene(tmp_path / "nan.tif")
        nan_here = run_prediction(predictor, nan_scene, "nan.tif", tmp_path / "nan_here",
                                  PredictOptions())
        nan_there = run_prediction(remote_predictor(server.url, predictor.config, tta=False,
                                                    scene=nan_scene),
                                   nan_scene, "nan.tif", tmp_path / "nan_there",
                                   PredictOptions(endpoint=server.url))
    finally:
        server.stop()
    with rasterio.open(here.mask_path) as a, rasterio.open(there.mask_path) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    with rasterio.open(nan_here.mask_path) as a, rasterio.open(nan_there.mask_path) as b:
        local = a.read(1)
        assert (local == 255).sum() == 8 * 8 and (local[20:28, 20:28] != 255).all()
        np.testing.assert_array_equal(b.read(1), local)


def nan_nodata_scene(path):
    """float32 without georeferencing, nodata NaN: a NaN block and a block of 0."""
    pixels = np.random.default_rng(7).uniform(1, 1000, (4, 40, 40)).astype("float32")
    pixels[:, 2:10, 2:10] = np.nan
    pixels[:, 20:28, 20:28] = 0
    with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=4,
                       dtype="float32", nodata=float("nan")) as dst:
        dst.write(pixels)
    return path


def test_model_server_results_are_not_credited_to_the_sidebar_version():
    """The server runs the model it was started with (an older one does not say which), so
    neither the page's caption nor the result's names the sidebar version's scores."""
    from pipelines.ui.prediction import model_caption, result_source
    from pipelines.ui.registry import VersionSummary

    version = VersionSummary(name="tea", version="1", aliases=("champion",), run_id=None,
                             created_ms=0, test_metrics={"miou": 0.384})
    endpoint = "http://127.0.0.1:5001"
    here = model_caption(version, serving_config(), 100_000_000)
    assert here.startswith("v1 · champion · mIoU 0.384: 4 bands, 3 classes, 32 px windows")
    there = model_caption(version, serving_config(), 100_000_000, endpoint)
    assert "mIoU" not in there and "champion" not in there
    assert there.startswith(f"Model server {endpoint}: it predicts with the model it was "
                            "started with, which must be v1 (checked before predicting)")
    assert result_source(version, None) == "v1 · champion · mIoU 0.384"
    assert result_source(version, endpoint) == f"the model server {endpoint} (its own model)"


def test_scene_notes_name_the_users_file(tmp_path):
    """The resampling and the warnings the page shows above the options, from the upload's
    temporary file but naming the user's."""
    eight_bit = write_scene(tmp_path / "upload.tif", 64, dtype="uint8")
    notes = scene_notes(eight_bit, "export.tif", serving_config(), 1_000_000)
    assert notes.resampling is None
    assert notes.warnings == [
        "export.tif: band 4 is tagged alpha: read as a band, as in training (the model has 4 "
        "bands); if it is transparency (an RGBA orthomosaic), predict with a model of 3 bands",
        "export.tif is uint8, but the model was trained on float32 pixels (band means 500): "
        "values of another range than training's give a wrong mask; predict the original "
        "float32 data if you have it"]
    trained_at_1m = serving_config().model_copy(update={"gsd": 1.0})
    scene = write_scene(tmp_path / "upload2.tif", 64)  # 0.5 m
    notes = scene_notes(scene, "field.tif", trained_at_1m, 1_000_000)
    assert notes.resampling == "resampled 0.5 m -> 1 m (model grid 32x32) and back"
    assert notes.warnings == []
    with pytest.raises(UiError, match=r"^field\.tif: too many pixels"):
        scene_notes(scene, "field.tif", trained_at_1m, 1000)


def test_a_scene_without_crs_takes_the_pixel_size_field(predictor, tmp_path):
    """The page's Pixel size (m), as `segpipe predict --pixel-size`: the warning names the
    field, and the mask equals the georeferenced scene's."""
    trained_at_1m = serving_config().model_copy(update={"gsd": 1.0})
    plain = write_scene(tmp_path / "upload.tif", 64, crs=None)  # 0.5 m, said nowhere
    warned = scene_notes(plain, "field.tif", trained_at_1m, 1_000_000)
    assert "give its metres per pixel (the Pixel size field below)" in warned.warnings[0]
    given = scene_notes(plain, "field.tif", trained_at_1m, 1_000_000, pixel_size=0.5)
    assert given.warnings == []
    assert given.resampling == "resampled 0.5 m -> 1 m (model grid 32x32) and back"
    assert pixel_size_field(None) is None and pixel_size_field(0.5) == 0.5
    with pytest.raises(UiError, match=r"^Pixel size \(m\) must be a positive number of metres, "
                                      r"got 0\.0$"):  # as --pixel-size 0
        pixel_size_field(0.0)
    utm = write_scene(tmp_path / "utm.tif", 64)
    at_1m = ScenePredictor(predictor.predict_fn, trained_at_1m, predictor.normalize)
    masks = []
    for scene, size in ((plain, 0.5), (utm, None)):
        result = run_prediction(at_1m, scene, "field.tif", new_result_dir(tmp_path),
                                PredictOptions(pixel_size=size))
        with rasterio.open(result.mask_path) as mask:
            masks.append(mask.read(1))
    np.testing.assert_array_equal(*masks)


def test_the_polygon_caption_names_the_coordinates_the_file_is_in(tmp_path):
    profile = dict(driver="GTiff", width=4, height=4, count=1, dtype="uint8")
    paths = {}
    for name, extra in (("utm", {"crs": "EPSG:32650", "transform": from_origin(0, 4, 1, 1)}),
                        ("world", {"transform": from_origin(0, 4, 1, 1)}), ("plain", {})):
        paths[name] = tmp_path / f"{name}.tif"
        with plain_images_quiet(), rasterio.open(paths[name], "w", **profile, **extra) as dst:
            dst.write(np.zeros((1, 4, 4), "uint8"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rasterio's NotGeoreferencedWarning on the console
        assert polygons_caption(paths["utm"], False) == "Polygons in the scene's CRS."
        assert polygons_caption(paths["utm"], True) == \
            "Polygons in longitude/latitude (EPSG:4326)."
        assert polygons_caption(paths["plain"], False) == \
            "Polygons in pixel coordinates: the scene has no georeferencing."
        assert polygons_caption(paths["world"], False) == \
            "Polygons in the coordinates of the scene's world file: it has no CRS."
        assert map_unit(paths["world"]) == ("units", False)
        assert mask_pixel_area(paths["plain"]) is None
        assert read_mask(paths["plain"], (2, 2)).shape == (2, 2)


def test_a_version_that_failed_the_gate_says_so():
    decision = ("no champion: miou 0.3060 does not beat the trivial baseline 0.4883 (the "
                "train split's majority class everywhere)")
    challenger = VersionSummary(name="tea", version="1", aliases=("challenger",),
                                run_id=None, created_ms=0, decision=decision)
    assert gate_note(challenger) == f"v1 is not the champion; the champion gate's decision: " \
                                    f"{decision}"
    champion = VersionSummary(name="tea", version="2", aliases=("champion",), run_id=None,
                              created_ms=0, decision="promoted")
    assert gate_note(champion) is None
    replaced = VersionSummary(name="tea", version="1", aliases=(), run_id=None, created_ms=0,
                              decision="promoted: no champion yet")
    assert gate_note(replaced) == ("v1 is no longer the champion: the champion gate promoted "
                                   "it (no champion yet), and another version holds the alias "
                                   "now")
