import json

import keras
import mlflow
import numpy as np
import pytest

from components.artifacts import TrainedModelInfo
from components.dataset_paths import ModelPaths
from components.train import learning_rate_at, load_trained_model, train_model
from components.train_options import TrainParams

pytestmark = pytest.mark.usefixtures("mlflow_store")

TINY = {"depth": 2, "filters": 4}


def _params(**kw) -> TrainParams:
    base = {"model_params": TINY, "epochs": 2, "batch_size": 4, "learning_rate": 1e-2,
            "overlay_every": 2, "overlay_tiles": 2, "early_stopping_patience": 0}
    return TrainParams(**{**base, **kw})


class Kill(RuntimeError):
    pass


class KillAfterEpoch(keras.callbacks.Callback):
    """Stands in for a pod eviction: the process dies after an epoch's checkpoint."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Kill(f"killed after epoch {epoch}")


def test_train_writes_model_and_logs_curves(tiny_dataset, tmp_path):
    out = tmp_path / "model"
    mlflow.set_experiment("train-basic")
    result = train_model(tiny_dataset, _params(augment="d4_color", class_weights="balanced"),
                         out)
    info = TrainedModelInfo.load(ModelPaths(out).info)
    assert info.num_classes == 3 and info.in_channels == 4 and info.patch_size == 32
    assert result.epochs_run == 2 and result.best_epoch in (0, 1)
    assert result.best_val_miou == max(result.history["val_miou"])
    model, _ = load_trained_model(out)
    probs = model.predict(np.zeros((1, 32, 32, 4), "float32"), verbose=0)
    assert probs.shape == (1, 32, 32, 3)
    client = mlflow.MlflowClient()
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["model.filters"] == "4"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_miou")]
    assert steps == [0, 1]
    # Per-class validation IoU curves, one point per epoch for the classes present.
    curves = {name for name in run.data.metrics if name.startswith("val_iou_")}
    assert curves and curves <= {"val_iou_background", "val_iou_tea", "val_iou_water"}
    name = sorted(curves)[0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [0, 1]
    assert len(run.inputs.dataset_inputs) == 1
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "overlays")]
    assert artifacts == ["overlays/val_epoch_001.png"]


def test_killed_training_resumes_from_checkpoint(tiny_dataset, tmp_path):
    out = tmp_path / "model"
    params = _params(epochs=3)
    mlflow.set_experiment("train-resume")
    with pytest.raises(Kill):
        train_model(tiny_dataset, params, out, callbacks=[KillAfterEpoch(1)])
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epochs_done"] == 2
    assert not ModelPaths(out).keras_model.exists()

    seen: list[int] = []
    spy = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(e))
    # The same params, model_params in another order (as Optuna gives a re-queued trial's).
    again = _params(epochs=3, model_params=dict(reversed(TINY.items())))
    assert list(again.model_params) != list(params.model_params)
    result = train_model(tiny_dataset, again, out, callbacks=[spy])
    assert seen == [2]
    assert result.resumed_from_epoch == 2 and result.epochs_run == 3
    assert len(result.history["val_miou"]) == 3
    client = mlflow.MlflowClient()
    steps = [m.step for m in client.get_metric_history(result.mlflow_run_id, "val_miou")]
    assert steps == [0, 1, 2]


def test_training_logs_into_the_run_its_caller_opened(tiny_dataset, tmp_path):
    mlflow.set_experiment("train-nested")
    with mlflow.start_run(run_name="caller") as caller:
        result = train_model(tiny_dataset, _params(epochs=1, overlay_tiles=0), tmp_path / "m")
    assert result.mlflow_run_id == caller.info.run_id
    run = mlflow.MlflowClient().get_run(caller.info.run_id)
    assert run.data.metrics["best_val_miou"] == pytest.approx(result.best_val_miou)


def test_learning_rate_schedule_warms_up_then_decays():
    params = TrainParams(epochs=10, learning_rate=1.0, warmup_epochs=2)
    rates = [learning_rate_at(e, params) for e in range(10)]
    assert rates[0] < rates[1] < rates[2] == 1.0
    assert all(a >= b for a, b in zip(rates[2:], rates[3:], strict=False))
    assert rates[-1] < 0.1


def test_bad_params_are_rejected():
    with pytest.raises(ValueError, match="batch_size"):
        TrainParams(batch_size=0)


def test_a_batch_over_1024_tiles_is_refused_naming_the_field():
    assert TrainParams(batch_size=1024).batch_size == 1024
    with pytest.raises(ValueError) as info:
        TrainParams(batch_size=1025)
    assert "batch_size\n  Input should be less than or equal to 1024" in str(info.value)
