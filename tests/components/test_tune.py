import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from components.train import TrainParams
from components.tune import TuneOptions, load_study, tune_model
from components.tune_space import ParamSpec, SearchSpace, cat, sample_params

pytestmark = pytest.mark.usefixtures("mlflow_store")

GOOD = {"architecture": "unet", "learning_rate": 1e-2, "unet.depth": 2}


def _space(max_lr: float = 1e30, max_depth: int = 7) -> SearchSpace:
    return SearchSpace(architecture=cat("unet"),
                       training={"learning_rate": ParamSpec(type="float", low=1e-3,
                                                            high=max_lr, log=True)},
                       models={"unet": {"depth": ParamSpec(type="int", low=2, high=max_depth),
                                        "filters": cat(4)}})


def _options(tmp_path, space: SearchSpace | None = None, **kw) -> TuneOptions:
    space = space or _space()
    base = {"batch_size": 4, "overlay_tiles": 0, "early_stopping_patience": None,
            "augment": "none"}
    values = {"n_trials": 3, "epochs": 2, "storage": f"sqlite:///{tmp_path / 'study.db'}",
              "study_name": "tiny", "pruner": "median", "pruner_startup_trials": 1,
              "pruner_warmup_epochs": 0, "search_space": space, "base_params": base}
    return TuneOptions.model_validate({**values, **kw})


def test_study_survives_a_failed_and_a_pruned_trial_and_resumes(tiny_dataset, tmp_path):
    options = _options(tmp_path, enqueue=[
        GOOD,
        {**GOOD, "unet.depth": 7},  # six poolings of a 32 px tile: a shape error in training
        {**GOOD, "learning_rate": 1e30},  # diverges -> NaN reported -> pruned
    ])
    out = tmp_path / "tune"
    result = tune_model(tiny_dataset.root, tiny_dataset.split, tiny_dataset.stats, options, out,
                        experiment_name="tune-failures")
    assert result.trial_states == {"COMPLETE": 1, "PRUNED": 1, "FAIL": 1}
    assert result.best_trial_number == 0
    assert result.best_params["unet.depth"] == 2
    assert (out / "model.keras").read_bytes() == (out / "trials/0/model.keras").read_bytes()
    assert not (out / "trials/2/model.keras").exists()
    assert not list(out.glob("trials/*/checkpoints"))

    client = mlflow.MlflowClient()
    parent = client.get_run(result.mlflow_run_id)
    assert parent.data.params["best.unet.depth"] == "2"
    assert "optimization_history.png" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    states = sorted(r.data.tags["segpipe.trial_state"] for r in children)
    assert states == ["COMPLETE", "FAIL", "PRUNED"]
    assert {r.info.status for r in children} == {"FINISHED", "FAILED", "KILLED"}
    complete = next(r for r in children if r.data.tags["segpipe.trial_state"] == "COMPLETE")
    assert [m.step for m in client.get_metric_history(complete.info.run_id, "val_miou")] == [0, 1]

    again = tune_model(tiny_dataset.root, tiny_dataset.split, tiny_dataset.stats, options, out,
                       experiment_name="tune-failures")
    assert again.trial_states == result.trial_states  # resumed: nothing left to run
    assert again.mlflow_run_id == result.mlflow_run_id


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_workers_share_one_sqlite_study(tiny_dataset, tmp_path):
    options = _options(tmp_path, _space(max_lr=1e-2, max_depth=2), n_trials=4, n_workers=2,
                       epochs=1, study_name="shared", pruner="none")
    out = tmp_path / "tune"
    result = tune_model(tiny_dataset.root, tiny_dataset.split, tiny_dataset.stats, options, out,
                        experiment_name="tune-workers")
    trials = load_study(options, options.storage).get_trials()
    assert len(trials) == 4
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["model_dir"] for t in trials}) == 4
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4
    assert sum(result.trial_states.values()) == 4
    client = mlflow.MlflowClient()
    parent = client.get_run(result.mlflow_run_id)
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert sorted(int(r.data.tags["optuna.trial"]) for r in children) == [0, 1, 2, 3]


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


def test_unbounded_study_is_rejected():
    with pytest.raises(ValueError, match="forever"):
        TuneOptions(n_trials=None)
