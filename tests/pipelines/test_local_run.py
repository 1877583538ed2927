"""The whole pipeline through Kubeflow's local runner on tiny data, as `segpipe run` does it:
a champion in the MLflow registry, trials nested under a parent run tagged with the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.sample_data import generate_sample_dataset
from tests.tiny_run import LEARNING_RATE, tiny_run_config

REPO_ROOT = Path(__file__).resolve().parents[2]

CONFIG = tiny_run_config(
    source="data", workdir="work",
    tuning={"n_workers": 2, "search_space": {"training": {"learning_rate": LEARNING_RATE}}},
    registry={"model_name": "tiny-seg"}, tracking={"mlflow_experiment": "local-run-test"})


def test_the_summary_shows_the_config_run_name_beside_a_numbered_mlflow_name(tmp_path,
                                                                              capsys):
    """A repeat run's MLflow parent is named cfg-2, but resuming goes by the config's name."""
    from pipelines.cli.run import _summary
    from pipelines.local_run import LocalRunResult

    result = LocalRunResult(test_miou=0.5, model_version="2", champion_version="2",
                            mlflow_run_id="abc", run_name="cfg-2", kfp_run_name="k",
                            tracking_uri="sqlite:///x.db", model_name="m",
                            log_path=tmp_path / "run.log", seconds=3.0, resumed=False,
                            config_run_name="cfg")
    _summary(result)
    assert "pipeline run      cfg-2 (config run name cfg)  (3 s)\n" in capsys.readouterr().out
    _summary(LocalRunResult(**{**result.__dict__, "run_name": "cfg"}))
    assert "pipeline run      cfg  (3 s)\n" in capsys.readouterr().out


@pytest.mark.slow
def test_segpipe_run_leaves_a_champion_and_a_tagged_parent_run(tmp_path):
    generate_sample_dataset(tmp_path / "data", scenes=4, size=64, seed=1)
    (tmp_path / "run.yaml").write_text(CONFIG)
    system_tmp = tmp_path / "system-tmp"  # kfp's task programs, autograph's modules...
    system_tmp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "TMPDIR": str(system_tmp)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--config", "run.yaml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted(system_tmp.rglob("*")) == []  # ...went to the run's own temp folder
    assert not (tmp_path / "work" / "tmp").exists()  # which is gone
    assert "test mIoU" in done.stdout and "Executing task" in done.stdout
    assert "Got executor_input" not in done.stdout  # the executor's JSON stays in the log

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'work' / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("tiny-seg", "champion")
    parent = client.get_run(champion.run_id)
    run_name = parent.data.tags["kfp.run_name"]
    assert run_name.startswith("segpipe-segmentation-")
    assert (tmp_path / "work" / "kfp-outputs" / run_name).is_dir()
    assert 0.0 <= parent.data.metrics["test_miou"] <= 1.0
    experiment = client.get_experiment_by_name("local-run-test")
    trials = client.search_runs([experiment.experiment_id],
                                f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len([t for t in trials if t.info.run_name.startswith("trial-")]) == 2
    assert (tmp_path / "work" / "optuna.db").exists()

    # Lineage: the whole resolved config, the original source, the code version, the data
    # each split holds; every trial's model can be fetched.
    assert parent.data.tags["segpipe.source"] == str(tmp_path / "data")
    assert parent.data.tags["segpipe.version"]
    assert parent.data.params["data.tile.patch_size"] == "32"
    assert parent.data.params["tuning.n_trials"] == "2"
    assert int(parent.data.params["data.test.tiles"]) > 0
    # What the trials ran, not tuning.train's unused defaults; the data as the user gave it,
    # not the tile task's output folder.
    assert parent.data.params["tuning.train.epochs"] == parent.data.params["tuning.epochs"]
    assert parent.data.params["tuning.train.learning_rate"] == "searched"
    for run in (parent, *trials):
        (logged,) = client.get_run(run.info.run_id).inputs.dataset_inputs
        assert json.loads(logged.dataset.source)["uri"] == str(tmp_path / "data")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"config.yaml", "search_space.json"} <= artifacts
    config = yaml.safe_load(client.download_artifacts(parent.info.run_id, "config.yaml",
                                                       str(tmp_path)) and
                            (tmp_path / "config.yaml").read_text())
    assert config["data"]["split"]["strategy"] == "scene" and config["source"] == \
        str(tmp_path / "data")
    trial = next(t for t in trials if t.info.run_name.startswith("trial-"))
    assert {a.path for a in client.list_artifacts(trial.info.run_id, "trained_model")} >= {
        "trained_model/model.keras", "trained_model/model.json"}
    assert Path(experiment.artifact_location.removeprefix("file://")).is_relative_to(
        tmp_path / "work")


    # The next commands a demo prints work in a new terminal: no exported variables, no
    # virtualenv on PATH, another working folder.
    from pipelines.demo import next_commands, write_request

    workdir = tmp_path / "work"
    scene = sorted((tmp_path / "data").glob("*_image.tif"))[0]
    write_request(scene, workdir / "request.json")
    commands = {verb: command for command, _ in
                next_commands(f"sqlite:///{workdir / 'mlflow.db'}", "tiny-seg", workdir, scene)
                for verb in ("serve", "predict", "curl") if f"{verb} " in command}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    import requests

    from tests.serving.server import Server, free_port

    # The server starts (TensorFlow, the model) while the predict commands run: on two
    # cores the two start-ups overlap instead of queueing.
    port = free_port()
    serve = commands["serve"].replace("--port 5001", f"--port {port}")
    server = Server(["bash", "-c", f"exec {serve}"], port, tmp_path / "serve.log",
                    {**clean, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        done = subprocess.run(["bash", "-c", commands["predict"]], cwd=elsewhere, env=clean,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert (workdir / "predicted_mask.tif").is_file()
        wrong = commands["predict"].replace("tiny-seg@champion", "nope@champion")
        done = subprocess.run(["bash", "-c", wrong], cwd=elsewhere, env=clean,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 1
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "models:/nope@champion is not in the tracking store" in done.stderr
        assert not list(elsewhere.iterdir())  # no stray store created

        server.wait_ready(timeout=240)
        curl = commands["curl"].replace(":5001", f":{port}")
        answer = subprocess.run(["bash", "-c", curl], cwd=elsewhere, env=clean,
                                capture_output=True, text=True, timeout=120)
        assert '"predictions"' in answer.stdout, answer.stdout[-500:] + answer.stderr[-500:]
        assert requests.get(f"{server.url}/ping", timeout=10).status_code == 200
    finally:
        server.stop()
