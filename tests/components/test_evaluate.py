import json
import re

import mlflow
import numpy as np
import pytest

from components.artifacts import read_tile
from components.evaluate import EvaluationResult, evaluate_model
from components.train import load_trained_model

pytestmark = pytest.mark.usefixtures("mlflow_store")


@pytest.fixture
def trained(trained_models):
    return trained_models["fit"]


def test_scores_match_a_pixel_count_by_hand(tiny_dataset, trained, tmp_path):
    mlflow.set_experiment("evaluate")
    result = evaluate_model(trained, tiny_dataset, tmp_path / "eval")
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
    assert result.confusion_matrix == cm.tolist()
    assert result.pixel_count == 3 * (32 * 32 - 16)  # the nodata corner is ignored
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    iou = tp[union > 0] / union[union > 0]
    assert result.metrics["miou"] == pytest.approx(iou.mean())
    assert result.metrics["pixel_accuracy"] == pytest.approx(tp.sum() / cm.sum())

    saved = EvaluationResult.model_validate(json.loads((tmp_path / "eval/metrics.json")
                                                       .read_text()))
    assert saved.split_digest == result.split_digest
    for name in ("report.md", "report.html", "confusion_matrix.png", "overlays.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    assert "| tea |" in (tmp_path / "eval/report.md").read_text()
    # Self-contained: MLflow's and Kubeflow's viewers resolve no relative links.
    sources = re.findall(r'src="([^"]*)"', (tmp_path / "eval/report.html").read_text())
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    run = mlflow.MlflowClient().get_run(result.mlflow_run_id)
    assert run.data.metrics["test_miou"] == pytest.approx(result.metrics["miou"])
    assert run.data.tags["segpipe.test_split_digest"] == result.split_digest


def test_model_for_other_bands_is_rejected(tiny_dataset, trained, tmp_path):
    info = json.loads((trained / "model.json").read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.keras").write_bytes((trained / "model.keras").read_bytes())
    (bad / "model.json").write_text(json.dumps({**info, "in_channels": 3}))
    with pytest.raises(ValueError, match="3 bands"):
        evaluate_model(bad, tiny_dataset, tmp_path / "eval", log_to_mlflow=False)
