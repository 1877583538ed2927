"""Tuning through the functions the pipeline's tasks call: prepare the study, run tune workers
(two real processes on one SQLite study included), select the best trial's model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from components.parent_run import resume_parent_run, start_pipeline_run
from components.tracking import TrackingOptions
from components.train_options import TrainParams
from components.tune import (
    TuneError,
    open_study,
    prepare_study,
    run_tune_worker,
    select_best_trial,
    study_search_space,
    study_trials,
    trial_shares,
)
from components.tune_budget import DEADLINE_ATTR
from components.tune_options import TuneOptions
from components.tune_space import ParamSpec, SearchSpace, cat, sample_params

pytestmark = pytest.mark.usefixtures("mlflow_store")

REPO_ROOT = Path(__file__).resolve().parents[2]
GOOD = {"architecture": "unet", "learning_rate": 1e-2, "unet.depth": 2}


def _space(max_lr: float = 1e30, max_depth: int = 7) -> SearchSpace:
    return SearchSpace(architecture=cat("unet"),
                       training={"learning_rate": ParamSpec(type="float", low=1e-3,
                                                            high=max_lr, log=True)},
                       models={"unet": {"depth": ParamSpec(type="int", low=2, high=max_depth),
                                        "filters": cat(4)}})


def _options(space: SearchSpace | None = None, **kw) -> TuneOptions:
    train = {"batch_size": 4, "overlay_tiles": 0, "early_stopping_patience": 0,
             "augment": "none"}
    values = {"n_trials": 3, "epochs": 2, "pruner": "median", "pruner_startup_trials": 1,
              "pruner_warmup_epochs": 0, "search_space": space or _space(), "train": train}
    return TuneOptions.model_validate({**values, **kw})


def _children(parent_id: str) -> list:
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_id)
    return client.search_runs([parent.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent_id}'")


def test_study_survives_a_failed_and_a_pruned_trial_and_resumes(tiny_dataset, tmp_path):
    options = _options(enqueue=[
        GOOD,
        {**GOOD, "unet.depth": 7},  # six poolings of a 32 px tile: a shape error in training
        {**GOOD, "learning_rate": 1e30},  # diverges -> NaN reported -> pruned
    ])
    storage, out = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "worker-0"
    prepare_study(options, storage, "tiny")
    mlflow.set_experiment("tune-failures")
    with mlflow.start_run(run_name="pipeline") as parent:
        summary = run_tune_worker(tiny_dataset, options, storage, "tiny", 0, out)
        best = select_best_trial(storage, "tiny", [(out, summary)], tmp_path / "best")
    states = sorted(t.state.name for t in open_study(options, storage, "tiny").trials)
    assert states == ["COMPLETE", "FAIL", "PRUNED"]
    assert summary == {"worker": 0, "completed_trials": 1, "best_value": best["best_value"],
                       "trial_number": 0}
    assert best["trial_number"] == 0 and best["n_trials"] == 3
    assert (tmp_path / "best/model.keras").read_bytes() == \
        (out / "trials/0/model.keras").read_bytes()
    assert not (out / "trials/2").exists()  # only the worker's best trial is kept
    assert not list(out.glob("trials/*/checkpoints"))

    client = mlflow.MlflowClient()
    # The best trial's settings under the names its own run logs them with.
    parent_params = client.get_run(parent.info.run_id).data.params
    trial_params = next(r.data.params for r in _children(parent.info.run_id)
                        if r.info.run_name.startswith("trial-0"))
    assert parent_params["best.model.depth"] == trial_params["model.depth"] == "2"
    assert "best.unet.depth" not in parent_params
    artifacts = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert "optimization_history.png" in artifacts
    searched = client.download_artifacts(parent.info.run_id, "search_space.json", str(tmp_path))
    assert json.loads(Path(searched).read_text())["architecture"]["choices"] == ["unet"]
    children = _children(parent.info.run_id)
    assert sorted(r.data.tags["segpipe.trial_state"] for r in children) == \
        ["COMPLETE", "FAIL", "PRUNED"]
    status = {r.data.tags["segpipe.trial_state"]: r.info.status for r in children}
    assert status == {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED"}
    failed = next(r for r in children if r.data.tags["segpipe.trial_state"] == "FAIL")
    assert "segpipe.error" in failed.data.tags
    complete = next(r for r in children if r.data.tags["segpipe.trial_state"] == "COMPLETE")
    assert [m.step for m in client.get_metric_history(complete.info.run_id, "val_miou")] == [0, 1]

    # Resumed: the study already has its trials, so a worker started again runs none.
    again = run_tune_worker(tiny_dataset, options, storage, "tiny", 0, tmp_path / "again")
    assert again["completed_trials"] == 0
    assert len(open_study(options, storage, "tiny").trials) == 3


def test_budget_cuts_the_study_and_still_selects_a_model(tiny_dataset, tmp_path):
    """6 s for 3 trials of 300 epochs: the first trial stops at the end of the epoch that
    crosses the deadline, keeps its best epoch and completes; no other trial starts, neither
    in this worker nor in a worker of a resumed run (the deadline is the study's)."""
    options = _options(_space(max_lr=1e-2, max_depth=2), n_trials=3, epochs=300,
                       pruner="none", budget_minutes=0.1)
    storage, out = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "worker-0"
    # The clock starts with the first worker: the data steps before it are not tuning time.
    assert DEADLINE_ATTR not in prepare_study(options, storage, "budget").user_attrs
    mlflow.set_experiment("tune-budget")
    with mlflow.start_run(run_name="pipeline") as parent:
        summary = run_tune_worker(tiny_dataset, options, storage, "budget", 0, out)
        best = select_best_trial(storage, "budget", [(out, summary)], tmp_path / "best")
    trials = open_study(options, storage, "budget").trials
    deadline = open_study(options, storage, "budget").user_attrs[DEADLINE_ATTR]
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    epochs = trials[0].user_attrs["stopped_by_budget_after_epoch"]
    assert 1 <= epochs < 300
    assert best["trial_number"] == 0 and (tmp_path / "best/model.keras").is_file()
    assert summary["best_value"] == pytest.approx(trials[0].value)
    (child,) = _children(parent.info.run_id)
    assert child.data.tags["segpipe.trial_state"] == "COMPLETE"
    assert len(mlflow.MlflowClient().get_metric_history(child.info.run_id, "val_miou")) \
        == epochs

    # A resumed run keeps the first deadline, so its workers start nothing.
    prepare_study(options, storage, "budget")
    again = run_tune_worker(tiny_dataset, options, storage, "budget", 0, tmp_path / "again")
    assert again["completed_trials"] == 0
    assert open_study(options, storage, "budget").user_attrs[DEADLINE_ATTR] == deadline
    assert len(open_study(options, storage, "budget").trials) == 1

    # A run resumed after its deadline, before any trial completed, says the budget ran out.
    spent = open_study(options, storage, "spent")
    spent.set_user_attr(DEADLINE_ATTR, time.time() - 1)
    idle = run_tune_worker(tiny_dataset, options, storage, "spent", 0, tmp_path / "idle")
    with pytest.raises(TuneError, match=r"the tuning budget \(tuning.budget_minutes\) ran out"):
        select_best_trial(storage, "spent", [(tmp_path / "idle", idle)], tmp_path / "none")


def _study_for_worker_processes(options, tmp_path: Path, name: str):
    """A parent run and its prepared study, with the files a tune worker process reads
    (tests/components/tune_worker_process.py), as the pipeline's ParallelFor starts them."""
    tracking = TrackingOptions(mlflow_tracking_uri=mlflow.get_tracking_uri(),
                               mlflow_experiment=f"tune-{name}",
                               optuna_storage=f"sqlite:///{tmp_path / 'study.db'}")
    context = start_pipeline_run(tracking, model_name="tiny", kfp_run_id="1",
                                 kfp_run_name=name)
    prepare_study(options, context.optuna_storage, context.study_name)
    context.save(tmp_path / "context.json")
    (tmp_path / "options.json").write_text(options.model_dump_json())
    return context


def _worker_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _worker_command(dataset, tmp_path: Path, worker: int) -> list[str]:
    return [sys.executable, "-m", "tests.components.tune_worker_process",
            str(tmp_path / "context.json"), str(dataset.root), str(tmp_path / "options.json"),
            str(worker), str(tmp_path / f"worker-{worker}")]


def test_no_trial_starts_after_the_deadline_whatever_the_worker_start_up_costs(
        tiny_dataset, tmp_path):
    """A worker in a fresh process sets the deadline, then imports TensorFlow (seconds) and
    builds its objective before Optuna's loop starts: a budget spent during that start-up
    must start no trial (the cut-off is the study's wall-clock deadline, not a timeout that
    starts counting when the loop does)."""
    options = _options(_space(max_lr=1e-2, max_depth=2), n_trials=2, epochs=1,
                       pruner="none", budget_minutes=0.002)  # 0.12 s
    context = _study_for_worker_processes(options, tmp_path, "start-up")
    done = subprocess.run(_worker_command(tiny_dataset, tmp_path, 0), env=_worker_env(),
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    study = open_study(options, context.optuna_storage, context.study_name)
    deadline = study.user_attrs[DEADLINE_ATTR]
    late = [(t.number, t.datetime_start.timestamp() - deadline) for t in study.trials
            if t.datetime_start is not None and t.datetime_start.timestamp() >= deadline]
    assert late == []
    assert json.loads(done.stdout.strip().splitlines()[-1])["completed_trials"] == 0


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_worker_processes_share_one_sqlite_study(tiny_dataset, tmp_path):
    """Two tune workers in their own processes, as the pipeline's ParallelFor starts them."""
    options = _options(_space(max_lr=1e-2, max_depth=2), n_trials=4, n_workers=2, epochs=1,
                       pruner="none")
    context = _study_for_worker_processes(options, tmp_path, "two-workers")
    workers = [subprocess.Popen(_worker_command(tiny_dataset, tmp_path, worker),
                                env=_worker_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
               for worker in (0, 1)]
    outputs = [worker.communicate(timeout=360) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    summaries = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert sorted(s["completed_trials"] for s in summaries) == [2, 2]

    trials = open_study(options, context.optuna_storage, context.study_name).get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    errors = [r.data.tags.get("segpipe.error") for r in _children(context.parent_run_id)]
    assert all(t.state == TrialState.COMPLETE for t in trials), (trials, errors, outputs)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4
    candidates = [(tmp_path / f"worker-{s['worker']}", s) for s in summaries]
    with resume_parent_run(context):
        best = select_best_trial(context.optuna_storage, context.study_name, candidates,
                                 tmp_path / "best")
    assert best["best_value"] == max(t.value for t in trials)
    children = _children(context.parent_run_id)
    assert sorted(int(r.data.tags["optuna.trial"]) for r in children) == [0, 1, 2, 3]


def _worker_folder(root: Path, worker: int, trial: int, value: float):
    trial_dir = root / f"worker-{worker}" / "trials" / str(trial)
    trial_dir.mkdir(parents=True)
    (trial_dir / "model.keras").write_text(f"weights of trial {trial}")
    (trial_dir / "model.json").write_text("{}")
    return root / f"worker-{worker}", {"worker": worker, "best_value": value,
                                       "trial_number": trial}


def test_select_copies_the_study_best_trial_from_the_worker_that_ran_it(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    dist = {"lr": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for value in (0.2, 0.7, 0.5):
        study.add_trial(optuna.trial.create_trial(value=value, params={"lr": value / 2},
                                                  distributions=dist))
    candidates = [_worker_folder(tmp_path, 0, 0, 0.2), _worker_folder(tmp_path, 1, 1, 0.7),
                  (tmp_path / "idle", {"worker": 2, "completed_trials": 0})]
    mlflow.set_experiment("tune-select")
    with mlflow.start_run() as parent:
        best = select_best_trial(storage, "s", candidates, tmp_path / "best")
    assert (best["trial_number"], best["best_value"], best["n_trials"]) == (1, 0.7, 3)
    assert (tmp_path / "best" / "model.keras").read_text() == "weights of trial 1"
    logged = mlflow.MlflowClient().get_run(parent.info.run_id).data
    assert logged.params["best.lr"] == "0.35"
    assert logged.metrics["best_val_miou"] == 0.7 and logged.metrics["trials_complete"] == 3


def test_select_fails_clearly_when_no_worker_completed_a_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(storage=storage, study_name="s", direction="maximize")
    with pytest.raises(TuneError, match="no worker completed a trial"):
        select_best_trial(storage, "s", [(tmp_path, {"worker": 0, "completed_trials": 0})],
                          tmp_path / "best")
    # Trials that failed two ways: the commonest error, counted.
    study = optuna.load_study(study_name="s", storage=storage)
    for error in ("ValueError: num_classes must be >= 2, got 1",) * 2 + ("OSError: disk",):
        study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL,
                                                  user_attrs={"segpipe.error": error}))
    with pytest.raises(TuneError) as caught:
        select_best_trial(storage, "s", [(tmp_path, {"worker": 0, "completed_trials": 0})],
                          tmp_path / "best")
    assert str(caught.value) == (
        "study s: no worker completed a trial ({'fail': 3}); 2 of 3 failed trials failed with "
        "ValueError: num_classes must be >= 2, got 1; the others' MLflow runs carry theirs "
        "(tag segpipe.error)")


def _failed_study(tmp_path, errors: list[str | None]) -> str:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    for error in errors:
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.FAIL, user_attrs={"segpipe.error": error} if error else {}))
    with pytest.raises(TuneError) as caught:
        select_best_trial(storage, "s", [(tmp_path, {"worker": 0, "completed_trials": 0})],
                          tmp_path / "best")
    return str(caught.value)


def test_the_failure_summary_counts_every_failed_trial(tmp_path):
    """Trials of a killed worker (or older code) failed without an error in the study: the
    count is of every failed trial, as the state counts before it, never "all" or "the
    trial" for the one that said why."""
    assert _failed_study(tmp_path, ["ValueError: num_classes must be >= 2, got 1", None,
                                    None]) == (
        "study s: no worker completed a trial ({'fail': 3}); 1 of 3 failed trials failed "
        "with ValueError: num_classes must be >= 2, got 1; 2 left no error in the study (a "
        "killed worker?); the trials' MLflow runs carry theirs (tag segpipe.error)")


def test_errors_that_differ_only_in_numbers_are_one_cause(tmp_path):
    """Three OOMs at the batch sizes each trial sampled failed for one reason: said so,
    with one of them as the example."""
    ooms = [f"ResourceExhaustedError: OOM when allocating tensor with shape[{b},64,512,512]"
            for b in (8, 16, 4)]
    assert _failed_study(tmp_path, ooms) == (
        "study s: no worker completed a trial ({'fail': 3}); all 3 trials failed alike, "
        "e.g. with ResourceExhaustedError: OOM when allocating tensor with "
        "shape[8,64,512,512]")


def test_trials_that_all_fail_alike_name_their_error_in_the_studys_failure(tiny_dataset,
                                                                          tmp_path):
    """Every trial failing the same deterministic way (a network too deep for its tiles):
    the run's one error line says why, not only that no trial completed."""
    space = SearchSpace(architecture=cat("unet"), training={"learning_rate": cat(1e-2)},
                        models={"unet": {"depth": cat(7), "filters": cat(4)}})
    options = _options(space, n_trials=1)
    storage, out = f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "worker-0"
    prepare_study(options, storage, "deep")
    mlflow.set_experiment("tune-all-fail")
    with mlflow.start_run(run_name="pipeline") as parent:
        summary = run_tune_worker(tiny_dataset, options, storage, "deep", 0, out)
        with pytest.raises(TuneError) as caught:
            select_best_trial(storage, "deep", [(out, summary)], tmp_path / "best")
    (failed,) = _children(parent.info.run_id)
    assert "multiples of 64" in failed.data.tags["segpipe.error"]
    # Keras words it on several lines, in bold: one plain line here.
    assert re.fullmatch(r"study deep: no worker completed a trial \(\{'fail': 1\}\); the "
                        r"trial failed with StrideError: [^\n\x1b]*input height and width must "
                        r"be multiples of 64 for this model, got 32x32; pad or crop the input",
                        str(caught.value)), str(caught.value)


@pytest.mark.parametrize(("n_trials", "n_workers"), [(10, 3), (2, 4), (1, 1), (7, 7)])
def test_worker_shares_add_up_and_differ_by_at_most_one(n_trials, n_workers):
    shares = trial_shares(n_trials, n_workers)
    assert sum(shares) == n_trials and max(shares) - min(shares) <= 1


@pytest.mark.parametrize("architecture", ["unet", "attention_unet", "unet_aspp"])
def test_default_space_builds_each_architecture(architecture):
    from segmodels import available_models, build_model

    if architecture not in available_models():
        pytest.skip(f"{architecture} not in segmodels")
    space = SearchSpace(architecture=cat(architecture))
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    params = sample_params(study.ask(), space, TrainParams(), epochs=3)
    assert params.architecture == architecture and params.epochs == 3
    assert set(params.model_params) == set(space.models[architecture])
    model = build_model(architecture, 3, 4, **params.model_params)
    assert model.output_shape == (None, None, None, 3)


def test_search_space_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown"):
        SearchSpace(architecture=cat("segformer"))
    with pytest.raises(ValueError, match="momentum"):
        SearchSpace(training={"momentum": cat(0.9)})


def test_every_worker_of_a_study_searches_the_space_the_first_one_resolved(tmp_path):
    """Kept in the study: a later worker, a retried pod or a resumed run on a machine that
    would resolve another space (no GPU, no network) still searches the first one."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = TuneOptions(search_space=SearchSpace(architecture=cat("unet")))
    study = open_study(first, storage, "kept")
    space = study_search_space(study, first)
    other = TuneOptions(search_space=SearchSpace(architecture=cat("attention_unet")))
    again = study_search_space(open_study(other, storage, "kept", worker=1), other)
    assert again == space and again.architecture.choices == ["unet"]


def test_one_trial_asked_of_a_space_of_one_point_is_not_said_to_be_fewer(tmp_path, caplog):
    """tuning.n_trials 1 and one point: one trial, as asked; nothing to say (it said "one
    trial, not tuning.n_trials=1")."""
    space = SearchSpace(architecture=cat("unet"), training={"learning_rate": cat(1e-2)},
                        models={"unet": {"depth": ParamSpec(type="int", low=2, high=2),
                                         "filters": cat(4)}})
    options = _options(space, n_trials=1)
    study = open_study(options, f"sqlite:///{tmp_path / 'study.db'}", "one")
    with caplog.at_level("WARNING", logger="components.tune"):
        assert study_trials(study, study_search_space(study, options), options) == 1
    assert not [r for r in caplog.records if "search space" in r.getMessage()]


@pytest.mark.parametrize(("filters", "message"), [
    ([4], "the search space has one point (architecture=unet, learning_rate=0.01, "
          "unet.depth=2, unet.filters=4): one trial, not tuning.n_trials=3, which would train "
          "the same model again"),
    ([4, 8], "the search space has 2 points, fewer than tuning.n_trials=3: each is tried "
             "once (2 trials), since more would train some model again"),
])
def test_a_space_of_fewer_points_than_trials_tries_each_once(tiny_dataset, tmp_path, caplog,
                                                              filters, message):
    """Three trials asked for: a space of one point trains one model (Optuna would draw the
    point three times), a space of two points each of them once."""
    space = SearchSpace(architecture=cat("unet"), training={"learning_rate": cat(1e-2)},
                        models={"unet": {"depth": ParamSpec(type="int", low=2, high=2),
                                         "filters": cat(*filters)}})
    options = _options(space, n_trials=3, epochs=1, pruner="none")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    prepare_study(options, storage, "grid")
    mlflow.set_experiment("tune-grid")
    with caplog.at_level("WARNING", logger="components.tune"), mlflow.start_run():
        summary = run_tune_worker(tiny_dataset, options, storage, "grid", 0, tmp_path / "w")
    trials = open_study(options, storage, "grid").trials
    assert sorted(t.params["unet.filters"] for t in trials) == filters
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert summary["completed_trials"] == len(filters)
    assert [r.getMessage() for r in caplog.records if "search space" in r.getMessage()] == [
        message]
    # Resumed, the study has tried every point: no worker trains again, nothing is said.
    caplog.clear()
    again = run_tune_worker(tiny_dataset, options, storage, "grid", 0, tmp_path / "again")
    assert again["completed_trials"] == 0
    assert not [r for r in caplog.records if "search space" in r.getMessage()]
    assert len(open_study(options, storage, "grid").trials) == len(filters)
