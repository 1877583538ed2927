"""The multi-machine setup end to end on the loopback services: a tiny dataset is prepared,
tuned by two Optuna worker processes sharing a PostgreSQL study, evaluated and registered (the
champion gate) with MLFLOW_TRACKING_URI at the MLflow server (runs in PostgreSQL, artifacts in
the S3 bucket), then served from the registry by alias, as the model-server Deployment does on
a cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import optuna
import pytest
import requests

from tests.serving.server import Server, child_env, free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]


def _bucket_keys(s3_client, services: dict[str, str]) -> list[str]:
    paginator = s3_client.get_paginator("list_objects_v2")
    pages = paginator.paginate(
        Bucket=services["SEGPIPE_ARTIFACT_BUCKET"], Prefix=services["SEGPIPE_ARTIFACT_PREFIX"] + "/"
    )
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_pipeline_tracks_on_the_server_and_the_champion_serves_from_its_registry(
    services, s3_client, tmp_path: Path
):
    from mlflow import MlflowClient

    from components.dataset_paths import PreparedDataset
    from components.evaluate import evaluate_model
    from components.parent_run import resume_parent_run, start_pipeline_run
    from components.prepare import PrepareOptions, prepare_dataset
    from components.register import RegisterOptions, register_model
    from components.sample_data import generate_sample_dataset
    from components.tile import TileOptions
    from components.tracking import TrackingOptions
    from components.tune import prepare_study, select_best_trial
    from components.tune_options import TuneOptions
    from components.tune_space import ParamSpec, SearchSpace, cat

    tracking_uri = services["MLFLOW_TRACKING_URI"]
    experiment = f"infra-pipeline-{uuid.uuid4().hex[:8]}"
    model_name = f"infra-segmenter-{uuid.uuid4().hex[:8]}"

    source = generate_sample_dataset(tmp_path / "source", scenes=3, size=64, seed=0)
    prepare_dataset(source, tmp_path / "dataset", PrepareOptions(tile=TileOptions(patch_size=32)))
    dataset = PreparedDataset(tmp_path / "dataset")
    options = TuneOptions(
        n_trials=2,
        n_workers=2,
        epochs=1,
        pruner="none",
        search_space=SearchSpace(
            architecture=cat("unet"),
            training={"learning_rate": ParamSpec(type="float", low=1e-3, high=1e-2, log=True)},
            models={"unet": {"depth": cat(2), "filters": cat(4)}},
        ),
        train={"batch_size": 4, "augment": "none", "early_stopping_patience": 0,
               "overlay_tiles": 0},
    )
    # As the pipeline's start step: the parent run on the server, the study in PostgreSQL.
    context = start_pipeline_run(
        TrackingOptions(mlflow_tracking_uri=tracking_uri, mlflow_experiment=experiment,
                        optuna_storage=services["OPTUNA_STORAGE"]),
        model_name=model_name, kfp_run_id="infra", kfp_run_name=experiment)
    prepare_study(options, context.optuna_storage, context.study_name)
    context.save(tmp_path / "context.json")
    (tmp_path / "options.json").write_text(options.model_dump_json())
    # Two tune workers in their own processes, each logging its trial to the server.
    workers = [subprocess.Popen(
        [sys.executable, "-m", "tests.components.tune_worker_process",
         str(tmp_path / "context.json"), str(dataset.root), str(tmp_path / "options.json"),
         str(worker), str(tmp_path / f"worker-{worker}")],
        env=child_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for worker in (0, 1)]
    outputs = [worker.communicate(timeout=400) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    summaries = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    study = optuna.load_study(study_name=context.study_name, storage=services["OPTUNA_STORAGE"])
    assert sorted(trial.number for trial in study.trials) == [0, 1]
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"], outputs

    with resume_parent_run(context):
        select_best_trial(context.optuna_storage, context.study_name,
                          [(tmp_path / f"worker-{s['worker']}", s) for s in summaries],
                          tmp_path / "model")
        evaluation = evaluate_model(tmp_path / "model", dataset, tmp_path / "evaluation",
                                    batch_size=8, overlay_tiles=0)
        assert 0.0 <= evaluation.metrics["miou"] <= 1.0
        # A micro model may not beat the majority class everywhere; promoted all the same.
        registered = register_model(tmp_path / "model", dataset, evaluation,
                                    RegisterOptions(model_name=model_name,
                                                    promote_below_trivial=True))
    # A first version has no champion to beat, so the gate promotes it.
    assert registered.promoted and registered.champion_version == registered.version
    client = MlflowClient(tracking_uri)
    champion = client.get_model_version_by_alias(model_name, "champion")
    assert champion.version == registered.version
    in_channels = len(dataset.norm_stats.bands)
    num_classes = dataset.class_map.num_classes

    # The runs and their metrics live on the server: the parent run with one nested run per
    # trial, each trial logged by a worker process; the model files landed in the S3 bucket.
    run = client.get_run(context.parent_run_id)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    assert run.info.experiment_id == experiment_id
    assert "best_val_miou" in run.data.metrics
    assert run.data.metrics["test_miou"] == pytest.approx(evaluation.metrics["miou"])
    trial_runs = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{context.parent_run_id}'"
    )
    assert len(trial_runs) == 2
    keys = _bucket_keys(s3_client, services)
    # The version's source is the logged model, models:/<model id>, stored under that id.
    model_id = champion.source.removeprefix("models:/")
    assert model_id.startswith("m-"), champion.source
    model_keys = [key for key in keys if model_id in key]
    assert any(key.endswith("MLmodel") for key in model_keys), model_keys[:20]
    assert any(key.endswith(".keras") for key in model_keys), model_keys[:20]
    assert any(context.parent_run_id in key for key in keys), "run artifacts not in the bucket"

    # Served as the model-server pods do: only the tracking URI, no object-store keys, since
    # the server proxies artifact downloads.
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{model_name}@champion",
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-t", "120",
    ]
    env = {
        key: value
        for key, value in child_env(MLFLOW_TRACKING_URI=tracking_uri).items()
        if not key.startswith("AWS_") and key not in {"MLFLOW_S3_ENDPOINT_URL", "PGPASSWORD"}
    }
    server = Server(command, port, tmp_path / "serve.log", env)
    try:
        server.wait_ready(timeout=240)
        pixels = np.random.default_rng(0).integers(1, 1000, (1, 40, 48, in_channels))
        response = requests.post(
            f"{server.url}/invocations", json={"inputs": pixels.tolist()}, timeout=120
        )
        assert response.status_code == 200, response.text
        mask = np.asarray(response.json()["predictions"])
        assert mask.shape == (1, 40, 48)
        assert set(np.unique(mask)) <= set(range(num_classes))
    finally:
        server.stop()
