import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from components.artifacts import NormStats, SplitManifest
from components.champion_gate import (
    TAG_CHALLENGER,
    TAG_CHAMPION,
    TAG_DECISION,
    TAG_SPLIT,
    apply_champion_gate,
)
from components.dataset_paths import PreparedDataset, read_tile
from components.evaluate import evaluate_model
from components.register import RegisterOptions, register_model, score_registered_model
from components.tile import TileOptions
from components.train import load_trained_model
from components.training_ground import load_training_ground
from serving.pixels import normalize_image

pytestmark = pytest.mark.usefixtures("mlflow_store")


@pytest.fixture(scope="module")
def evaluated_models(tiny_dataset, trained_models, tmp_path_factory, mlflow_uri):
    """The two trained models, evaluated, ordered (better, worse) by test mIoU."""
    mlflow.set_tracking_uri(mlflow_uri)
    models = []
    for name, model_dir in trained_models.items():
        out = tmp_path_factory.mktemp(f"registered-{name}")
        (out / "model").symlink_to(model_dir, target_is_directory=True)
        mlflow.set_experiment("register")
        result = evaluate_model(model_dir, tiny_dataset, out / "eval", batch_size=8,
                                overlay_tiles=0)
        models.append((out, result))
    models.sort(key=lambda m: -m[1].metrics["miou"])
    assert models[0][1].metrics["miou"] > models[1][1].metrics["miou"]
    return models


def _register(dataset, model, options):
    out, evaluation = model
    mlflow.set_experiment("register")
    return register_model(out / "model", dataset, evaluation, options)


def _alias(alias: str, name: str = "gate-test") -> str:
    return str(MlflowClient().get_model_version_by_alias(name, alias).version)


def test_gate_promotes_first_and_never_a_worse_model(tiny_dataset, evaluated_models):
    better, worse = evaluated_models
    # Two-epoch micro models need not beat the majority class: that gate is tested below.
    options = RegisterOptions(model_name="gate-test", promote_below_trivial=True)
    client = MlflowClient()

    first = _register(tiny_dataset, better, options)
    assert first.promoted and first.champion_version == first.version
    assert _alias("challenger") == first.version

    second = _register(tiny_dataset, worse, options)
    assert not second.promoted
    assert second.champion_version == first.version
    assert second.champion_score == pytest.approx(better[1].metrics["miou"], abs=1e-6)
    assert _alias("champion") == first.version
    assert _alias("challenger") == second.version
    tags = client.get_model_version("gate-test", second.version).tags
    assert tags[TAG_DECISION].startswith("kept champion")
    assert float(tags[TAG_CHALLENGER]) == pytest.approx(worse[1].metrics["miou"], abs=1e-6)
    assert float(tags[TAG_CHAMPION]) == pytest.approx(better[1].metrics["miou"], abs=1e-6)
    assert tags[TAG_SPLIT] == worse[1].split_digest
    # The registry reads on its own: the model and each version say what they are.
    described = client.get_model_version("gate-test", second.version).description
    assert "Architecture: unet" in described and "3 classes (background, tea, water)" in described
    assert f"miou {worse[1].metrics['miou']:.3f}" in described and "kept champion" in described
    assert "champion" in client.get_registered_model("gate-test").description

    # A champion scored on another split is not compared on trust: refused without a way to
    # re-score it, and re-scored when one is given.
    kept = apply_champion_gate(client, "gate-test", second.version, 0.99, "another-split",
                               options)
    assert not kept.promoted and "another split" in kept.decision
    won = apply_champion_gate(client, "gate-test", second.version, 0.99, "another-split",
                              options, rescore=lambda champion: 0.5)
    assert won.promoted and won.champion_score == 0.5
    assert _alias("champion") == second.version
    # Nor is a score of another metric (a tile-level figure, or one from before the gate
    # recorded its metric) compared with a scene-level one.
    by_tiles = options.model_copy(update={"metric": "tile_miou"})
    kept = apply_champion_gate(client, "gate-test", first.version, 0.99, "another-split",
                               by_tiles)
    assert not kept.promoted and "another split, metric or scoring rule" in kept.decision


def test_gate_and_tags_use_the_scene_level_miou(tiny_dataset, evaluated_models):
    """The headline is the scene-level figure: a model that looks great tile by tile but not
    on whole scenes is gated, tagged and described by its scene-level mIoU."""
    model, evaluation = evaluated_models[1]
    scored = evaluation.model_copy(update={"metrics": {**evaluation.metrics, "miou": 0.25,
                                                       "tile_miou": 0.95}})
    result = _register(tiny_dataset, (model, scored), RegisterOptions(model_name="scene-gate"))
    assert result.challenger_score == 0.25
    tags = MlflowClient().get_model_version("scene-gate", result.version).tags
    assert float(tags[TAG_CHALLENGER]) == 0.25
    assert float(tags["segpipe.test_miou"]) == 0.25
    assert float(tags["segpipe.test_tile_miou"]) == 0.95
    described = MlflowClient().get_model_version("scene-gate", result.version).description
    assert "miou 0.250" in described and "tile_miou 0.950" in described
    # What it was trained and selected on, for `segpipe evaluate` (components/training_ground).
    ground = load_training_ground(result.run_id)
    assert ground.dataset_digest == tiny_dataset.digest()
    assert sorted(part.split for part in ground.footprints) == ["train", "val"]


def test_the_trivial_baseline_gates_every_metric_not_only_miou(tiny_dataset, evaluated_models):
    """With registry.metric pixel_accuracy, a model no better than the majority class
    everywhere by pixel accuracy is registered but not made champion."""
    model, evaluation = evaluated_models[1]
    trivial = evaluation.metrics["trivial_pixel_accuracy"]
    scored = evaluation.model_copy(update={"metrics": {**evaluation.metrics, "miou": 0.99,
                                                       "pixel_accuracy": trivial}})
    options = RegisterOptions(model_name="trivial-accuracy", metric="pixel_accuracy")
    refused = _register(tiny_dataset, (model, scored), options)
    assert not refused.promoted and refused.champion_version == "none"
    assert refused.decision.startswith("no champion: pixel_accuracy ")
    assert "does not beat the trivial baseline" in refused.decision
    better = scored.model_copy(update={"metrics": {**scored.metrics,
                                                   "pixel_accuracy": trivial + 0.01}})
    assert _register(tiny_dataset, (model, better), options).promoted


def test_registered_model_takes_raw_pixels(tiny_dataset, evaluated_models):
    better, _ = evaluated_models
    result = _register(tiny_dataset, better, RegisterOptions(model_name="serve-test",
                                                             promote_below_trivial=True))
    served = mlflow.pyfunc.load_model("models:/serve-test@champion")
    keras_model, _ = load_trained_model(better[0] / "model")
    stats = NormStats.load(tiny_dataset.stats)
    tile_id = SplitManifest.load(tiny_dataset.split).splits["test"][0]
    image, mask = read_tile(tiny_dataset.tiles_dir, tile_id)
    predicted = np.asarray(served.predict(image[None], params={"overlap": 0.0}))[0]
    expected = keras_model.predict(normalize_image(image, stats.mean, stats.std,
                                                   stats.nodata)[None], verbose=0)[0].argmax(-1)
    valid = mask != 255
    assert predicted.shape == mask.shape
    assert (predicted[valid] == expected[valid]).mean() > 0.99
    assert result.model_uri == "models:/serve-test/1"
    # The signature: a batch of H x W x C images of the training dtype, and the params.
    (spec,) = served.metadata.signature.inputs.inputs
    assert spec.type == np.dtype(tiny_dataset.tile_manifest.model_dtype) == image.dtype
    assert spec.shape == (-1, -1, -1, image.shape[-1])
    assert {p.name for p in served.metadata.signature.params.params} == {
        "tta", "overlap", "output", "resample", "pixel_size", "nodata"}
    other = np.float64 if image.dtype != np.float64 else np.float32
    with pytest.raises(MlflowException, match=f"dtype of input {np.dtype(other)}"):
        served.predict(image[None].astype(other))
    # A champion re-scored on a new split is scored as evaluate scores, scenes and tiles.
    for metric in ("miou", "tile_miou"):
        rescored = score_registered_model(result.model_uri, tiny_dataset, "test", metric)
        assert rescored == pytest.approx(better[1].metrics[metric], abs=0.02)


def test_the_gates_tile_scores_are_segpipe_evaluates(tmp_path):
    """The champion gate re-scores a model by the code `segpipe evaluate` scores it with: for
    a model trained at scale 2, the test tiles (already resampled by tiling) go to its
    forward pass as they are, not through serving's resampling a second time; the tile
    mIoU is the same to the bit, and so is the scene mIoU."""
    from components.evaluate_logged import evaluate_logged_model
    from components.evaluate_options import EvaluateOptions
    from components.prepare import PrepareOptions, prepare_dataset
    from components.sample_data import generate_sample_dataset
    from serving.remote import load_serving_config
    from tests.logged_models import register_known_model, save_known_model

    source = generate_sample_dataset(tmp_path / "sample", scenes=3, size=48, seed=2)
    dataset = PreparedDataset(prepare_dataset(source, tmp_path / "dataset", PrepareOptions(
        tile=TileOptions(patch_size=32, scale=2.0))).dataset_dir)
    # 0.5 m scenes at twice their pixels: 0.25 m tiles, the model's gsd.
    assert (dataset.tile_manifest.scale, dataset.tile_manifest.gsd) == (2.0, 0.25)
    assert dataset.tile_ids("test")
    mlflow.set_experiment("register")
    folder = save_known_model(tmp_path / "model", classes=dataset.class_map.num_classes,
                              bands=dataset.tile_manifest.bands)
    uri = register_known_model(folder, dataset, "scale-two")
    assert load_serving_config(uri).gsd == 0.25
    evaluated = evaluate_logged_model(uri, str(dataset.root), tmp_path / "eval",
                                      EvaluateOptions(overlay_tiles=0))
    for metric in ("tile_miou", "miou"):
        assert score_registered_model(uri, dataset, "test", metric) == \
            evaluated.metrics[metric], metric
