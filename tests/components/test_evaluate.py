import json
import re
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import rasterio

from components.artifacts import TrainedModelInfo
from components.dataset_paths import PreparedDataset, read_tile
from components.evaluate import EvaluationResult, evaluate_model
from components.train import load_trained_model
from components.trivial_baseline import trivial_key

pytestmark = pytest.mark.usefixtures("mlflow_store")


@pytest.fixture
def trained(trained_models):
    return trained_models["fit"]


def test_tile_scores_match_a_pixel_count_by_hand(tiny_dataset, trained, tmp_path):
    mlflow.set_experiment("evaluate")
    result = evaluate_model(trained, tiny_dataset, tmp_path / "eval", batch_size=8,
                            overlay_tiles=4)
    # Recount from the raw tiles with the same model, independently of the tf.data path.
    from components.artifacts import NormStats, SplitManifest
    from serving.pixels import normalize_image

    stats = NormStats.load(tiny_dataset.stats)
    model, _ = load_trained_model(trained)
    cm = np.zeros((3, 3), dtype=np.int64)
    for tile_id in SplitManifest.load(tiny_dataset.split).splits["test"]:
        image, mask = read_tile(tiny_dataset.tiles_dir, tile_id)
        x = normalize_image(image, stats.mean, stats.std, stats.nodata)[None]
        pred = model.predict(x, verbose=0)[0].argmax(-1)
        valid = mask != 255
        np.add.at(cm, (mask[valid], pred[valid]), 1)
    assert result.tile_confusion_matrix == cm.tolist()
    assert result.tile_pixel_count == 3 * (32 * 32 - 16)  # the nodata corner is ignored
    # The scenes' test pixels are the test tiles' pixels: the same count at scene level.
    assert result.pixel_count == result.tile_pixel_count and result.scene_count == 3
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = tp[union > 0] / union[union > 0]
    assert result.metrics["tile_miou"] == pytest.approx(iou.mean())
    assert result.metrics["tile_pixel_accuracy"] == pytest.approx(tp.sum() / cm.sum())
    assert [result.tile_class_iou[n] for n in result.class_names] == pytest.approx(list(iou))
    # The trivial baseline on the same pixels: the train split's majority class everywhere.
    from components.artifacts import TileManifest

    train = set(SplitManifest.load(tiny_dataset.split).splits["train"])
    totals = np.zeros(3, np.int64)
    for tile in TileManifest.load(tiny_dataset.tiles_manifest).tiles:
        for class_id, pixels in tile.class_counts.items():
            totals[int(class_id)] += pixels if tile.id in train else 0
    majority = int(totals.argmax())
    truth = cm.sum(1)
    # Averaged over the classes the model's mIoU counts: in the truth or the prediction.
    trivial_iou = [truth[c] / cm.sum() if c == majority else 0.0
                   for c in range(3) if truth[c] or cm[:, c].sum()]
    assert result.majority_class == result.class_names[majority]
    assert result.metrics["tile_trivial_miou"] == pytest.approx(np.mean(trivial_iou))
    assert result.metrics["tile_trivial_pixel_accuracy"] == pytest.approx(
        truth[majority] / cm.sum())
    # Every score the champion gate may compare has its baseline beside it.
    gate_metrics = [k for k in result.metrics if "trivial" not in k]
    assert all(trivial_key(k) in result.metrics for k in gate_metrics), gate_metrics

    saved = EvaluationResult.model_validate(json.loads((tmp_path / "eval/metrics.json")
                                                       .read_text()))
    assert saved.split_digest == result.split_digest
    for name in ("report.md", "report.html", "confusion_matrix.png", "overlays.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    report = (tmp_path / "eval/report.md").read_text()
    assert "| tea |" in report and "tile mIoU" in report and "trivial mIoU" in report
    # Self-contained: MLflow's and Kubeflow's viewers resolve no relative links.
    sources = re.findall(r'src="([^"]*)"', (tmp_path / "eval/report.html").read_text())
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    run = mlflow.MlflowClient().get_run(result.mlflow_run_id)
    assert run.data.metrics["test_miou"] == pytest.approx(result.metrics["miou"])
    assert run.data.metrics["test_tile_miou"] == pytest.approx(result.metrics["tile_miou"])
    assert run.data.metrics["test_trivial_miou"] == pytest.approx(
        result.metrics["trivial_miou"])
    assert run.data.tags["segpipe.test_split_digest"] == result.split_digest


def test_model_for_other_bands_is_rejected(tiny_dataset, trained, tmp_path):
    info = json.loads((trained / "model.json").read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.keras").write_bytes((trained / "model.keras").read_bytes())
    (bad / "model.json").write_text(json.dumps({**info, "in_channels": 3}))
    with pytest.raises(ValueError, match="3 bands"):
        evaluate_model(bad, tiny_dataset, tmp_path / "eval", batch_size=8, overlay_tiles=0,
                       log_to_mlflow=False)


# A model whose answer is known pixel by pixel: a 1x1 convolution on the first normalized
# band (class 0 below the mean, 2 above; 1 never), so blending, overlap and window edges
# cannot change it, and a fourth class "cloud" that is in no label and never predicted.
CLOUD = ("cloud", "#FFFFFF")


@pytest.fixture(scope="module")
def cloud_dataset(tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("cloud") / "dataset"
    shutil.copytree(tiny_dataset.root, root)
    classes = json.loads((root / "classes.json").read_text())
    classes["classes"].append({"id": 3, "name": CLOUD[0], "color": CLOUD[1]})
    (root / "classes.json").write_text(json.dumps(classes))
    return PreparedDataset(root)


@pytest.fixture(scope="module")
def known_model(tmp_path_factory):
    import keras

    inputs = keras.Input((None, None, 4))
    conv = keras.layers.Conv2D(4, 1)
    model = keras.Model(inputs, keras.layers.Softmax()(conv(inputs)))
    kernel = np.zeros((1, 1, 4, 4), np.float32)
    kernel[0, 0, 0, :3] = (-1.0, 0.0, 1.0)
    conv.set_weights([kernel, np.array([0, 0, 0, -50], np.float32)])
    folder = tmp_path_factory.mktemp("known") / "model"
    folder.mkdir()
    model.save(folder / "model.keras")
    TrainedModelInfo(architecture="unet", params={"depth": 1, "filters": 4}, num_classes=4,
                     in_channels=4, patch_size=32).save(folder / "model.json")
    return folder


@pytest.fixture(scope="module")
def known_evaluation(cloud_dataset, known_model, tmp_path_factory):
    return evaluate_model(known_model, cloud_dataset, tmp_path_factory.mktemp("known-eval"),
                          batch_size=8, overlay_tiles=0, log_to_mlflow=False)


def _known_counts(dataset: PreparedDataset, scene: int, cols: slice) -> np.ndarray:
    stats = dataset.norm_stats
    with rasterio.open(dataset.scenes_dir / f"scene{scene}_image.tif") as src:
        band = src.read(1)[:, cols]
    with rasterio.open(dataset.scenes_dir / f"scene{scene}_mask.tif") as src:
        truth = src.read(1)[:, cols]
    predicted = np.where((band - stats.mean[0]) / stats.std[0] > 0, 2, 0)
    valid = truth != 255
    cm = np.zeros((4, 4), np.int64)
    np.add.at(cm, (truth[valid], predicted[valid]), 1)
    return cm


def test_scene_scores_match_a_pixel_count_by_hand(cloud_dataset, known_evaluation):
    """Test pixels are the last 32 columns of each 128-px scene (tiles 9-11 of the random
    split); the rest of each scene was trained or validated on and must not count."""
    cm = sum(_known_counts(cloud_dataset, scene, slice(96, None)) for scene in range(3))
    result = known_evaluation
    assert result.confusion_matrix == cm.tolist()
    assert result.scene_count == 3 and result.pixel_count == 3 * (32 * 32 - 16)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    assert result.class_iou["tea"] == 0.0  # in the labels, never predicted: a real 0
    assert result.metrics["miou"] == pytest.approx((tp[:3] / union[:3]).mean())
    assert result.metrics["pixel_accuracy"] == pytest.approx(tp.sum() / cm.sum())


def test_a_class_with_no_pixels_is_absent_not_zero(known_evaluation, tmp_path):
    result = known_evaluation
    for ious, prefix in ((result.class_iou, ""), (result.tile_class_iou, "tile_")):
        assert ious["cloud"] is None and ious["water"] is not None
        assert f"{prefix}iou_cloud" not in result.metrics
        present = [v for v in ious.values() if v is not None]
        assert len(present) == 3
        assert result.metrics[f"{prefix}miou"] == pytest.approx(np.mean(present))
    assert next(c for c in result.per_class if c.name == "cloud").support == 0
    report = Path(result.report_md).read_text()
    assert "| cloud | absent |" in report and report.count("absent") == 2
    saved = json.loads(Path(result.metrics_path).read_text())
    assert saved["class_iou"]["cloud"] is None


def test_missing_scenes_are_named_before_any_work(tiny_dataset, trained, tmp_path):
    dataset = PreparedDataset(tiny_dataset.root, scenes=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="nowhere.*scene0_image.tif"):
        evaluate_model(trained, dataset, tmp_path / "eval", batch_size=8, overlay_tiles=0,
                       log_to_mlflow=False)


def test_a_whole_test_scene_counts_every_labelled_pixel(cloud_dataset, known_model, tmp_path):
    """A scene split: scene2 is all test, so all of it is scored, edges included."""
    root = tmp_path / "dataset"
    shutil.copytree(cloud_dataset.root, root)
    split = json.loads((root / "split.json").read_text())
    ids = sorted(i for ids in split["splits"].values() for i in ids)
    split["splits"] = {name: [i for i in ids if i.startswith(f"scene{s}")]
                       for s, name in enumerate(("train", "val", "test"))}
    split["strategy"] = "scene"
    (root / "split.json").write_text(json.dumps(split))
    result = evaluate_model(known_model, PreparedDataset(root), tmp_path / "eval",
                            batch_size=8, overlay_tiles=0, log_to_mlflow=False)
    assert result.scene_count == 1 and result.pixel_count == 4 * (32 * 32 - 16)
    assert result.confusion_matrix == _known_counts(cloud_dataset, 2, slice(None)).tolist()
