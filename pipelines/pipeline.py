"""The segmentation pipeline: one Kubeflow Pipelines (v2) definition for laptop and cluster.

start run (MLflow parent run, Optuna study) -> ingest -> tile -> split -> normalize ->
[tune workers in a ParallelFor] -> select best -> evaluate (test split) -> register, inside an
exit handler whose task closes the parent run (FINISHED, or FAILED with the error).

Its parameters are the config file's sections (``source`` and one dict per section, each
defaulting to its options model's defaults), so the Kubeflow run form, ``segpipe submit`` and
``segpipe run`` all pass the same thing and each step validates its own section.

The same definition runs through ``kfp.local`` (resource requests, GPU and Kubernetes
secrets are ignored there) and compiles to IR YAML for a cluster, where:
- data steps are cached (a re-run with the same inputs reuses them); steps with side
  effects (MLflow runs, Optuna trials, registry) never are;
- tune workers request one ``nvidia.com/gpu`` each and share one Optuna study, whose
  storage is PostgreSQL on a cluster;
- S3 and database credentials come from Kubernetes secrets (``optional``, so a cluster
  without S3 or a password still runs), endpoints from a ConfigMap; never parameters.
"""

from kfp import dsl, kubernetes
from pydantic import BaseModel

from components.ingest_options import IngestOptions
from components.output_formats import OUTPUT_FORMATS
from components.register import RegisterOptions
from components.split import SplitOptions
from components.tile import TileOptions
from components.tracking import TrackingOptions
from components.tune_options import TuneOptions
from pipelines import kfp_components as steps
from pipelines.config import PipelineConfig

PIPELINE_NAME = "segpipe-segmentation"

# Kubernetes objects the cluster deployment (infra/) provides.
S3_SECRET = "segpipe-s3"
S3_SECRET_KEYS = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
                  "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}
DB_SECRET = "segpipe-db"
DB_SECRET_KEYS = {"PGPASSWORD": "PGPASSWORD"}  # libpq (Optuna's PostgreSQL storage) reads it
ENDPOINTS_CONFIG_MAP = "segpipe-endpoints"
# AWS_DEFAULT_REGION: boto3's region for the steps' S3 clients (components/sources.py,
# MLflow's artifact uploads), which sign for it.
ENDPOINTS_KEYS = {"MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI",
                  "MLFLOW_S3_ENDPOINT_URL": "MLFLOW_S3_ENDPOINT_URL",
                  "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
                  "AWS_DEFAULT_REGION": "AWS_DEFAULT_REGION",
                  "OPTUNA_STORAGE": "OPTUNA_STORAGE"}

# Requests sized for the tiny demo up to a few thousand tiles; limits are left to the cluster.
DATA_RESOURCES = ("1", "2Gi")
TUNE_RESOURCES = ("4", "16Gi")
EVAL_RESOURCES = ("2", "8Gi")
LIGHT_RESOURCES = ("500m", "1Gi")
GPU = "nvidia.com/gpu"
TUNE_PARALLELISM = 8  # at most this many workers at once, whatever tuning.n_workers says

#: Pipeline parameter -> the options model of the config section it carries.
SECTIONS: dict[str, type[BaseModel]] = {
    "ingest": IngestOptions, "tile": TileOptions, "split": SplitOptions,
    "tuning": TuneOptions, "registry": RegisterOptions, "tracking": TrackingOptions,
}
_WHERE = {"ingest": "data.ingest", "tile": "data.tile", "split": "data.split"}


def _configure(task: dsl.PipelineTask, name: str, resources: tuple[str, str], *, cache: bool,
               s3: bool = False, db: bool = False) -> dsl.PipelineTask:
    """``name`` is what the Kubeflow UI shows for the task (its IR name stays the function's)."""
    cpu, memory = resources
    task.set_display_name(name)
    task.set_cpu_request(cpu).set_memory_request(memory).set_caching_options(cache)
    kubernetes.use_config_map_as_env(task, ENDPOINTS_CONFIG_MAP, ENDPOINTS_KEYS, optional=True)
    if s3:
        kubernetes.use_secret_as_env(task, S3_SECRET, S3_SECRET_KEYS, optional=True)
    if db:
        kubernetes.use_secret_as_env(task, DB_SECRET, DB_SECRET_KEYS, optional=True)
    return task


def section_defaults(model: type[BaseModel]) -> dict:
    """A section parameter's default: its options model's defaults, as JSON."""
    return model().model_dump(mode="json", exclude_none=True)


def _segmentation_pipeline(
    source: str,
    ingest: dict = section_defaults(IngestOptions),
    tile: dict = section_defaults(TileOptions),
    split: dict = section_defaults(SplitOptions),
    tuning: dict = section_defaults(TuneOptions),
    registry: dict = section_defaults(RegisterOptions),
    tracking: dict = section_defaults(TrackingOptions),
    source_fingerprint: str = "",
) -> None:
    # The parent run opens first, so that any failure, even in the data steps, is recorded
    # in MLflow; the exit task closes it whatever happens.
    finished = _configure(steps.finish_run(tracking=tracking,
                                           kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER),
                          "Close MLflow run", LIGHT_RESOURCES, cache=False)
    with dsl.ExitHandler(finished, name="Segmentation steps"):
        started = _configure(steps.start_run(
            source=source, ingest=ingest, tile=tile, split=split, tuning=tuning,
            registry=registry, tracking=tracking,
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            kfp_run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER), "Open MLflow run and Optuna study",
            LIGHT_RESOURCES, cache=False, s3=True, db=True)
        context = started.outputs["run_context"]
        # Each data step gets its output format (components/output_formats.py): a part of
        # its cache key, so an entry cached by code that wrote another format is not reused;
        # ingest also what the source held (components/source_fingerprint.py), so an entry
        # cached before a file in it changed is not either.
        ingested = _configure(steps.ingest(source=source, options=ingest,
                                           output_format=OUTPUT_FORMATS["ingest"],
                                           source_fingerprint=source_fingerprint),
                              "Ingest scenes", DATA_RESOURCES, cache=True,
                              s3=True).after(started)
        tiled = _configure(steps.tile(scenes=ingested.outputs["scenes"], options=tile,
                                      output_format=OUTPUT_FORMATS["tile"]),
                           "Tile scenes", DATA_RESOURCES, cache=True)
        tiles = tiled.outputs["tiles"]
        splitted = _configure(steps.split(tiles=tiles, options=split,
                                          output_format=OUTPUT_FORMATS["split"]),
                              "Split train/val/test", DATA_RESOURCES, cache=True)
        split_manifest = splitted.outputs["split"]
        normalized = _configure(steps.normalize(tiles=tiles, split=split_manifest,
                                                output_format=OUTPUT_FORMATS["normalize"]),
                                "Fit normalization", DATA_RESOURCES, cache=True)
        stats = normalized.outputs["stats"]

        # Inside the loop only pipeline parameters, the loop item and artifacts are passed:
        # the local runner replaces upstream *parameter* outputs with the loop item there.
        with dsl.ParallelFor(items=started.outputs["Output"], name="Tune workers",
                             parallelism=TUNE_PARALLELISM) as worker:
            tuned = steps.tune_worker(worker=worker, tiles=tiles, split=split_manifest,
                                      stats=stats, run_context=context, tuning=tuning)
            _configure(tuned, "Tune worker", TUNE_RESOURCES, cache=False, s3=True, db=True)
            tuned.set_accelerator_type(GPU).set_accelerator_limit(1).set_retry(2)

        selected = _configure(steps.select_best(models=dsl.Collected(tuned.outputs["model"]),
                                                run_context=context),
                              "Select best trial", LIGHT_RESOURCES, cache=False, s3=True,
                              db=True)
        best = selected.outputs["best_model"]
        scenes = ingested.outputs["scenes"]
        evaluated = _configure(steps.evaluate(model=best, scenes=scenes, tiles=tiles,
                                              split=split_manifest, stats=stats,
                                              run_context=context, registry=registry),
                               "Evaluate on test split", EVAL_RESOURCES, cache=False, s3=True)
        _configure(steps.register(model=best, scenes=scenes, tiles=tiles, split=split_manifest,
                                  stats=stats,
                                  evaluation=evaluated.outputs["evaluation"],
                                  run_context=context, registry=registry),
                   "Register model", LIGHT_RESOURCES, cache=False, s3=True)


def section_description(name: str, model: type[BaseModel]) -> str:
    """The run form's help for one section: where it sits in the config file, then each
    field with its default and description, from the options model itself."""
    fields = []
    for field_name, field in model.model_fields.items():
        if field.default_factory is not None:
            default = "see the default value"
        else:
            default = "unset" if field.default is None else repr(field.default)
        description = f": {field.description}" if field.description else ""
        fields.append(f"{field_name} (default {default}){description}")
    return (f"The config file's `{_WHERE.get(name, name)}` section ({model.__name__}); fields "
            f"left out keep their defaults. Fields: {'; '.join(fields)}.")


def _docstring() -> str:
    args = ["source: Scenes to learn from: a folder, an s3://bucket/prefix, or a .zip/.tar "
            "archive of image + mask pairs."]
    args += [f"{name}: {section_description(name, model)}" for name, model in SECTIONS.items()]
    args.append("source_fingerprint: What the source holds, as a part of the ingest step's "
                "cache key (segpipe run/submit fill it from a listing of the source); from "
                "this form, any text that changes when files in the source change (e.g. the "
                "date of the last upload), else a cached ingest of the same source is reused.")
    return ("Tune, evaluate and register a segmentation model for a set of image/mask scenes."
            "\n\nArgs:\n" + "\n".join(f"    {line}" for line in args) + "\n")


_segmentation_pipeline.__doc__ = _docstring()
segmentation_pipeline = dsl.pipeline(
    name=PIPELINE_NAME,
    description="Semantic segmentation of aerial/satellite imagery: ingest, tile, split, "
                "normalize, tune (parallel Optuna workers), evaluate on the test split, "
                "register in MLflow.")(_segmentation_pipeline)


def pipeline_arguments(config: PipelineConfig, tracking: TrackingOptions,
                       source_fingerprint: str = "") -> dict:
    """The pipeline's arguments for ``config``: its source and each section as JSON, with
    ``tracking`` (the config's, or with a local run's embedded stores filled in), and the
    fingerprint of what the source holds (components/source_fingerprint.py)."""
    data = config.data
    sections: dict[str, BaseModel] = {"ingest": data.ingest, "tile": data.tile,
                                      "split": data.split, "tuning": config.tuning,
                                      "registry": config.registry, "tracking": tracking}
    return {"source": config.source,
            **{name: section.model_dump(mode="json", exclude_none=True)
                for name, section in sections.items()},
            "source_fingerprint": source_fingerprint}
