"""The compiled IR: every step, cluster behaviour (GPU, requests, caching, fan-out, secrets,
images), the names the Kubeflow UI shows, and the run form's parameters with defaults and
descriptions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.images import ComponentImages, ImageError, component_image

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_STEPS = {"ingest", "tile", "split", "normalize"}
OTHER_STEPS = {"start-run", "select-best", "evaluate", "register"}
EXIT_STEP = "finish-run"
# What a cluster pulls from: the registry from the environment, the tag from the option.
REGISTRY = "registry.example.org:5000/team"
TAG = "2024.06-rc1"


def run_compile(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "compile", *args],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def compiled_path(tmp_path_factory) -> Path:
    """`segpipe compile` run as a user would, in a subprocess importing this checkout."""
    out = tmp_path_factory.mktemp("compile") / "pipeline.yaml"
    # TensorFlow's default log level: were it imported, its start-up lines would show.
    done = run_compile("--out", str(out), "--image-tag", TAG,
                       env={"SEGPIPE_IMAGE_REGISTRY": REGISTRY, "SEGPIPE_IMAGE_TAG": "other",
                            "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # compiling needs no TensorFlow: no start-up noise
    return out


@pytest.fixture(scope="module")
def compiled(compiled_path) -> tuple[dict, dict]:
    pipeline_spec, platform_spec = yaml.safe_load_all(compiled_path.read_text())
    return pipeline_spec, platform_spec


def test_compiled_yaml_loads_back_as_a_kubeflow_pipeline(compiled_path):
    from kfp import components

    loaded = components.load_component_from_file(str(compiled_path))
    assert loaded.name == "segpipe-segmentation"
    assert {"source", "ingest", "tile", "split", "tuning", "registry", "tracking",
            "source_fingerprint"} == set(loaded.component_spec.inputs)


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
    (loop_name,) = [n for n in body(spec) if n.startswith("for-loop")]
    assert collected["taskOutputArtifact"]["producerTask"] == loop_name


def test_every_task_has_a_readable_name_in_the_kubeflow_ui(compiled):
    spec, _ = compiled
    dags = [spec["root"]["dag"], *(c["dag"] for c in spec["components"].values() if "dag" in c)]
    shown = {key: task["taskInfo"]["name"] for dag in dags for key, task in dag["tasks"].items()}
    assert len(shown) == len(DATA_STEPS | OTHER_STEPS) + 4  # + tune-worker, loop, exit handler
    for key, name in shown.items():
        assert name != key and " " in name and name[0].isupper(), (key, name)
    assert len(set(shown.values())) == len(shown)
    assert shown[EXIT_STEP] == "Close MLflow run"
    assert shown["ingest"] == "Ingest scenes" and shown["tune-worker"] == "Tune worker"


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


def test_each_data_step_gets_its_output_format_as_an_input(compiled):
    """An input, so a part of the cache key: a step's entry cached by code that wrote another
    format (components/output_formats.py) is not reused, on a cluster as locally."""
    from components.output_formats import OUTPUT_FORMATS

    spec, _ = compiled
    tasks = body(spec)
    assert set(OUTPUT_FORMATS) == DATA_STEPS
    for name in DATA_STEPS:
        given = tasks[name]["inputs"]["parameters"]["output_format"]
        assert given["runtimeValue"]["constant"] == OUTPUT_FORMATS[name], name


def test_ingest_gets_the_source_fingerprint_as_an_input(compiled):
    """A part of its cache key: a cached ingest of a source whose files changed since is not
    reused (segpipe run/submit fill the parameter from a listing of the source)."""
    spec, _ = compiled
    given = body(spec)["ingest"]["inputs"]["parameters"]["source_fingerprint"]
    assert given["componentInputParameter"] == "pipelinechannel--source_fingerprint"
    assert spec["root"]["inputDefinitions"]["parameters"]["source_fingerprint"][
        "defaultValue"] == ""


def test_components_run_in_the_images_asked_for(compiled):
    spec, _ = compiled
    for name, ex in spec["deploymentSpec"]["executors"].items():
        gpu = name == "exec-tune-worker"
        image = f"{REGISTRY}/segpipe-component{'-gpu' if gpu else ''}:{TAG}"
        assert ex["container"]["image"] == image, name
        # preinstalled image: nothing pip-installed when a task starts
        assert "pip install" not in " ".join(ex["container"]["command"]), name


def test_by_default_components_run_in_the_published_versioned_images(tmp_path):
    from pipelines.runner import compile_pipeline

    out = compile_pipeline(tmp_path / "p.yaml", ComponentImages.resolve(environ={}))
    spec, _ = yaml.safe_load_all(out.read_text())
    images = {n: e["container"]["image"] for n, e in spec["deploymentSpec"]["executors"].items()}
    assert images.pop("exec-tune-worker") == component_image(gpu=True)
    assert set(images.values()) == {component_image()}
    assert component_image().startswith("ghcr.io/segpipe/segpipe-component:")


def test_compiling_without_cache_turns_it_off_in_every_dag(tmp_path):
    from pipelines.runner import compile_pipeline

    out = compile_pipeline(tmp_path / "p.yaml", cache=False)
    assert "enableCache" not in out.read_text()


def test_bad_image_names_are_refused_naming_their_origin(tmp_path):
    with pytest.raises(ImageError, match=r"\$SEGPIPE_IMAGE_TAG: '-dev' is not an image tag"):
        ComponentImages.resolve(environ={"SEGPIPE_IMAGE_TAG": "-dev"})
    done = run_compile("--out", str(tmp_path / "p.yaml"), "--image-registry", "My Registry")
    assert done.returncode == 2
    assert "error: --image-registry: 'My Registry' is not a registry path" in done.stderr
    assert not (tmp_path / "p.yaml").exists()
    assert ComponentImages.resolve("localhost:5000/", environ={}).cpu.startswith(
        "localhost:5000/segpipe-component:")


def test_run_form_shows_every_section_with_its_fields_and_defaults(compiled):
    from pipelines.pipeline import SECTIONS

    spec, _ = compiled
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) == {"source", *SECTIONS, "source_fingerprint"}
    assert "cache key" in params["source_fingerprint"]["description"]
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


@pytest.mark.parametrize("where, problem", [
    ("folder", "is a folder; give a file name"),
    ("/proc/nope.yaml", "cannot create files in /proc"),
    # kfp 2.17 writes (deprecated) JSON for .json and refuses other names: never YAML in them
    ("c.json", "'.json', but Kubeflow Pipelines IR YAML is written; name it .yaml or .yml"),
    ("c.txt", "'.txt', but Kubeflow Pipelines IR YAML is written"),
    ("newdir/", "ends in a slash, so it names a folder; give a file name"),
])
def test_an_unwritable_out_is_refused_in_one_line_before_compiling(tmp_path, where, problem):
    out = (str(tmp_path) if where == "folder" else where if where.startswith("/")
           else f"{tmp_path}/{where}")
    done = run_compile("--out", out)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()  # one line, no traceback
    assert line.startswith(f"error: --out {out}") and problem in line
    assert list(tmp_path.iterdir()) == []  # no temporary sibling left beside it


def test_run_form_shows_int_defaults_as_ints(compiled, compiled_path):
    """A dict parameter's default is a protobuf Struct, whose numbers are doubles: without
    the models' own JSON the form would read patch_size: 256.0."""
    spec, _ = compiled
    params = spec["root"]["inputDefinitions"]["parameters"]
    tile, tuning = params["tile"]["defaultValue"], params["tuning"]["defaultValue"]
    assert type(tile["patch_size"]) is int and type(tuning["n_trials"]) is int
    assert type(tuning["train"]["batch_size"]) is int
    assert type(params["ingest"]["defaultValue"]["max_member_bytes"]) is int
    assert type(tile["scale"]) is float  # a float field stays one
    header = compiled_path.read_text().split("\n# Inputs:", 1)[1].split("\n\n", 1)[0]
    assert "'patch_size': 256," in header and "256.0" not in header


def _write_small(path: Path, pipeline) -> list[dict]:
    from google.protobuf import json_format

    from pipelines.runner import write_spec_yaml

    write_spec_yaml(path, json_format.MessageToDict(pipeline.pipeline_spec),
                    pipeline.description, pipeline.platform_spec)
    return list(yaml.safe_load_all(path.read_text()))


def test_the_spec_is_written_as_kfp_writes_it_for_any_pipeline(tmp_path):
    """A platform spec document only with platform features, and kfp's workspace check."""
    from kfp import compiler, dsl

    # No components of their own: this module's annotations are strings, which kfp's
    # decorator cannot read.
    @dsl.pipeline(name="plain")
    def plain():
        dsl.importer(artifact_uri="s3://bucket/key", artifact_class=dsl.Dataset)

    @dsl.pipeline(name="download")
    def download():
        dsl.importer(artifact_uri="s3://bucket/key", artifact_class=dsl.Dataset,
                     download_to_workspace=True)

    @dsl.pipeline(name="workspace", pipeline_config=dsl.PipelineConfig(
        workspace=dsl.WorkspaceConfig(size="1Gi")))
    def workspace():
        dsl.importer(artifact_uri="s3://bucket/key", artifact_class=dsl.Dataset,
                     download_to_workspace=True)

    for pipeline in (plain, workspace):
        ours = _write_small(tmp_path / f"{pipeline.name}.yaml", pipeline)
        compiler.Compiler().compile(pipeline, str(tmp_path / f"{pipeline.name}-kfp.yaml"))
        assert ours == list(yaml.safe_load_all((tmp_path / f"{pipeline.name}-kfp.yaml")
                                               .read_text()))
    assert len(_write_small(tmp_path / "p.yaml", plain)) == 1
    assert len(_write_small(tmp_path / "w.yaml", workspace)) == 2
    with pytest.raises(ValueError, match=r"download_to_workspace=True\) requires "
                       r"PipelineConfig\(workspace=\.\.\.\)"):
        _write_small(tmp_path / "d.yaml", download)
