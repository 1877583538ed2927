"""The compiled IR: every step, cluster behaviour (GPU, requests, caching, fan-out, secrets)
and the run form's parameters with defaults and descriptions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.images import component_image

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_STEPS = {"ingest", "tile", "split", "normalize"}
OTHER_STEPS = {"start-run", "select-best", "evaluate", "register"}
EXIT_STEP = "finish-run"


@pytest.fixture(scope="module")
def compiled_path(tmp_path_factory) -> Path:
    """`segpipe compile` run as a user would, in a subprocess importing this checkout."""
    out = tmp_path_factory.mktemp("compile") / "pipeline.yaml"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "compile", "--out", str(out)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def compiled(compiled_path) -> tuple[dict, dict]:
    pipeline_spec, platform_spec = yaml.safe_load_all(compiled_path.read_text())
    return pipeline_spec, platform_spec


def test_compiled_yaml_loads_back_as_a_kubeflow_pipeline(compiled_path):
    from kfp import components

    loaded = components.load_component_from_file(str(compiled_path))
    assert loaded.name == "segpipe-segmentation"
    assert {"source", "ingest", "tile", "split", "tuning", "registry", "tracking"} == set(
        loaded.component_spec.inputs)


def executor(spec: dict, task: str) -> dict:
    return spec["deploymentSpec"]["executors"][f"exec-{task}"]["container"]


def loop_component(spec: dict) -> dict:
    (name,) = [n for n in spec["components"] if n.startswith("comp-for-loop")]
    return spec["components"][name]


def body(spec: dict) -> dict:
    """The tasks inside the exit handler: every step but the one that closes the run."""
    return spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]


def test_every_step_is_in_the_dag_and_the_exit_task_closes_the_run(compiled):
    spec, _ = compiled
    assert set(body(spec)) >= DATA_STEPS | OTHER_STEPS
    assert "tune-worker" in loop_component(spec)["dag"]["tasks"]
    exit_task = spec["root"]["dag"]["tasks"][EXIT_STEP]
    assert exit_task["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert body(spec)["ingest"]["dependentTasks"] == ["start-run"]


def test_tuning_fans_out_over_the_workers_the_start_step_lists(compiled):
    spec, _ = compiled
    (loop,) = [t for n, t in body(spec).items() if n.startswith("for-loop")]
    assert loop["parameterIterator"]["items"]["inputParameter"].endswith("start-run-Output")
    assert loop["iteratorPolicy"]["parallelismLimit"] >= 2
    collected = body(spec)["select-best"]["inputs"]["artifacts"]["models"]
    assert collected["taskOutputArtifact"]["producerTask"] == loop["taskInfo"]["name"]


def test_tune_workers_request_a_gpu(compiled):
    spec, _ = compiled
    accelerator = executor(spec, "tune-worker")["resources"]["accelerator"]
    assert accelerator["resourceType"] == "nvidia.com/gpu"
    assert int(accelerator["resourceCount"]) == 1
    for task in DATA_STEPS | {"evaluate", "register"}:
        assert "accelerator" not in executor(spec, task).get("resources", {})


def test_every_task_requests_cpu_and_memory(compiled):
    spec, _ = compiled
    for name, ex in spec["deploymentSpec"]["executors"].items():
        resources = ex["container"]["resources"]
        assert resources["cpuRequest"] > 0, name
        assert resources["memoryRequest"] > 0, name


def test_only_data_steps_are_cached(compiled):
    spec, _ = compiled
    tasks = body(spec)
    for name in DATA_STEPS:
        assert tasks[name]["cachingOptions"].get("enableCache") is True, name
    for name in OTHER_STEPS:
        assert not tasks[name].get("cachingOptions", {}).get("enableCache"), name
    tune = loop_component(spec)["dag"]["tasks"]["tune-worker"]
    assert not tune.get("cachingOptions", {}).get("enableCache")


def test_components_run_in_the_versioned_component_images(compiled):
    spec, _ = compiled
    for name, ex in spec["deploymentSpec"]["executors"].items():
        image = ex["container"]["image"]
        expected = component_image(gpu=name == "exec-tune-worker")
        assert image == expected, name
        # preinstalled image: nothing pip-installed when a task starts
        assert "pip install" not in " ".join(ex["container"]["command"]), name


def test_run_form_shows_every_section_with_its_fields_and_defaults(compiled):
    from pipelines.pipeline import SECTIONS

    spec, _ = compiled
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) == {"source", *SECTIONS}
    for name, model in SECTIONS.items():
        description = params[name]["description"]
        for field in model.model_fields:
            assert f"{field} (default" in description, (name, field)
        defaults = params[name]["defaultValue"]
        assert defaults == model().model_dump(mode="json", exclude_none=True), name
    assert params["split"]["defaultValue"]["ratios"] == [0.7, 0.15, 0.15]
    assert "source" in params and "defaultValue" not in params["source"]
    assert not any(word in name for name in params for word in ("password", "secret", "token"))


def test_credentials_come_from_kubernetes_secrets(compiled):
    _, platform = compiled
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]

    def secrets(task: str) -> dict[str, set[str]]:
        return {s["secretName"]: {k["envVar"] for k in s["keyToEnv"]}
                for s in executors[f"exec-{task}"].get("secretAsEnv", [])}

    assert secrets("ingest")["segpipe-s3"] == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert secrets("tune-worker")["segpipe-db"] == {"PGPASSWORD"}
    assert "segpipe-s3" in secrets("register")
    endpoints = executors["exec-tune-worker"]["configMapAsEnv"][0]
    assert {k["envVar"] for k in endpoints["keyToEnv"]} >= {"MLFLOW_TRACKING_URI",
                                                          "OPTUNA_STORAGE"}
