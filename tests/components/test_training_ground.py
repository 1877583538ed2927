"""`segpipe evaluate` tells a score on the model's own training ground from a held-out one:
registration records the ground of the train and validation splits, an evaluation compares
its scored tiles with it, warns and records the share."""

import json
import warnings

import mlflow
import pytest
import rasterio
from rasterio.transform import Affine

from components.evaluate_logged import evaluate_logged_model
from components.evaluate_options import EvaluateOptions
from components.ingest_options import IngestOptions
from components.training_ground import (
    SEEN_GROUND_METRIC,
    SEEN_GROUND_TAG,
    SeenGroundWarning,
    load_training_ground,
)
from tests.components.conftest import TILE, scenes_as_source
from tests.logged_models import register_known_model, save_known_model

pytestmark = pytest.mark.usefixtures("mlflow_store")
INGEST = IngestOptions(palette="classes.json", ignore_values=[255])


@pytest.fixture(scope="module")
def registered(tiny_dataset, tmp_path_factory, mlflow_uri):
    """The known model registered with tiny_dataset's ground: of its 12 tiles (4 in a row
    per scene), ids 0-5 train, 6-8 validation, 9-11 test; tile i is the (i // 3)th of
    scene i % 3."""
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("training-ground")
    folder = save_known_model(tmp_path_factory.mktemp("known") / "model")
    return register_known_model(folder, tiny_dataset, "ground-known")


def _shift(source, columns: float) -> None:
    """Move every scene of ``source`` east by ``columns`` pixels (its pixels unchanged)."""
    for path in sorted((source / "images").glob("*.tif")) + sorted(
            (source / "masks").glob("*.tif")):
        with rasterio.open(path, "r+") as raster:
            raster.transform = raster.transform @ Affine.translation(columns, 0)


def _retag(source, crs: str) -> None:
    """Tag every scene of ``source`` with ``crs``, its coordinates unchanged (a wrong tag)."""
    for path in sorted((source / "images").glob("*.tif")) + sorted(
            (source / "masks").glob("*.tif")):
        with rasterio.open(path, "r+") as raster:
            raster.crs = crs


def _evaluate(uri, data, out, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_logged_model(uri, str(data), out, EvaluateOptions(
            overlay_tiles=0, **options), None if (data / "tiles.json").is_file() else INGEST)
    return result, [str(w.message) for w in caught if w.category is SeenGroundWarning]


def test_registration_records_the_train_and_validation_ground(tiny_dataset, registered):
    version = mlflow.MlflowClient().get_model_version("ground-known", "1")
    ground = load_training_ground(version.run_id)
    assert ground.dataset_digest == tiny_dataset.digest()
    counts = {part.split: len(part.bounds) for part in ground.footprints}
    assert counts == {"train": 6, "val": 3} and ground.footprints[0].crs == "EPSG:32633"
    # Tile 0: the first 32 px of scene 0, at x 500000, 10 m pixels, 32 rows down from y 4e6.
    assert ground.footprints[0].bounds[0] == pytest.approx(
        (500000, 4000000 - 10 * TILE, 500000 + 10 * TILE, 4000000))


def test_the_models_training_scenes_as_a_source_are_told_as_seen_ground(
        tiny_dataset, registered, tmp_path):
    source = scenes_as_source(tiny_dataset, tmp_path / "source")
    result, told = _evaluate(registered, source, tmp_path / "eval", log_to_mlflow=True)
    seen = result.seen_ground
    assert (seen.scored_tiles, seen.seen_tiles) == (12, 9)
    assert seen.seen_tiles_by_split == {"train": 6, "val": 3}
    assert seen.seen_ground_share == pytest.approx(0.75)
    assert told == [seen.message()]
    assert told[0].startswith("9 of 12 scored tiles (75% of their pixels) lie on the model's "
                              "training ground (train split and validation split of ")
    assert told[0].endswith("train 6, validation 3): this figure is not a held-out score")
    saved = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert saved["seen_ground"]["seen_ground_share"] == pytest.approx(0.75)
    assert "not a held-out score" in (tmp_path / "eval/report.md").read_text()
    run = mlflow.get_run(result.mlflow_run_id)
    assert run.data.metrics[SEEN_GROUND_METRIC] == pytest.approx(0.75)
    assert run.data.tags[SEEN_GROUND_TAG] == seen.message()


def test_ground_half_a_tile_over_is_told_by_its_share(tiny_dataset, registered, tmp_path):
    """Shifted half a tile east, each scene's tiles lie on train+train, train+train (tile 3
    then 6: train and validation), validation+test and test+nothing: 2.5 of 4 tiles' pixels."""
    source = scenes_as_source(tiny_dataset, tmp_path / "source")
    _shift(source, TILE / 2)
    result, told = _evaluate(registered, source, tmp_path / "eval")
    seen = result.seen_ground
    assert (seen.seen_tiles, seen.seen_tiles_by_split) == (9, {"train": 6, "val": 3})
    assert seen.seen_ground_share == pytest.approx(2.5 / 4)
    assert len(told) == 1 and told[0].startswith("9 of 12 scored tiles (62% of their pixels)")


def test_disjoint_ground_and_the_models_own_test_split_are_held_out(
        tiny_dataset, registered, tmp_path):
    source = scenes_as_source(tiny_dataset, tmp_path / "source")
    _shift(source, 100 * TILE)  # far east of every scene
    result, told = _evaluate(registered, source, tmp_path / "elsewhere", log_to_mlflow=True)
    assert told == [] and result.seen_ground.seen_tiles == 0
    assert result.seen_ground.seen_ground_share == 0
    run = mlflow.get_run(result.mlflow_run_id)
    assert run.data.metrics[SEEN_GROUND_METRIC] == 0
    assert "not a held-out" not in (tmp_path / "elsewhere/report.md").read_text()
    own, told = _evaluate(registered, tiny_dataset.root, tmp_path / "test")
    assert told == [] and (own.seen_ground.scored_tiles, own.seen_ground.seen_tiles) == (3, 0)
    train, told = _evaluate(registered, tiny_dataset.root, tmp_path / "train", split="train")
    assert train.seen_ground.seen_ground_share == 1 and len(told) == 1


def test_scored_tiles_the_records_crs_cannot_place_are_held_out(tiny_dataset, registered,
                                                                tmp_path):
    """UTM coordinates tagged as degrees (latitude 4e6): EPSG:32633 has no place for them,
    so they are not on the model's ground, and the evaluation scores them."""
    source = scenes_as_source(tiny_dataset, tmp_path / "source")
    _retag(source, "EPSG:4326")
    result, told = _evaluate(registered, source, tmp_path / "eval")
    assert told == [] and result.seen_ground.scored_tiles == 12
    assert (result.seen_ground.seen_tiles, result.seen_ground.seen_ground_share) == (0, 0)


def test_tiles_without_a_crs_are_found_by_their_content(tiny_dataset, tmp_path):
    """Plain images have no place on the ground: a tile identical to a seen one is seen."""
    import shutil

    from components.artifacts import TileManifest
    from components.dataset_paths import PreparedDataset
    from components.training_ground import seen_ground, training_ground

    shutil.copytree(tiny_dataset.root, tmp_path / "plain")
    plain = PreparedDataset(tmp_path / "plain")
    manifest = TileManifest.load(plain.tiles_manifest)
    for scene in manifest.scenes:
        scene.crs = None
    manifest.save(plain.tiles_manifest)
    ground = training_ground(plain, "plain")
    assert ground.footprints == [] and len(ground.digests["train"]) == 6
    assert seen_ground(ground, plain, "val").seen_tiles_by_split == {"train": 0, "val": 3}
    assert seen_ground(ground, plain, "test").seen_tiles == 0
