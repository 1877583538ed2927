"""`segpipe demo|run|compile|submit`: the Kubeflow pipeline from the command line."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from pipelines.cli.errors import fail, interrupted
from pipelines.demo import DEMO_SCENES, DEMO_SIZE

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"
DEMO_CONFIG = CONFIGS_DIR / "demo.yaml"


def _load(config: Path, overrides: dict | None = None):
    # Neither Keras nor TensorFlow loads here: a config error shows in about a second.
    from pipelines.config import ConfigError, load_config

    try:
        return load_config(config, overrides)
    except ConfigError as err:
        raise fail(err) from None


def _run(config, verbose: bool, fresh: bool = False):
    from serving.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # before the steps import it, chattering
    from pipelines.local_run import PipelineInterrupted, PipelineRunError, run_local

    try:
        return run_local(config, verbose=verbose, fresh=fresh)
    except PipelineInterrupted as err:
        raise interrupted(err.kept, err.signum) from None
    except PipelineRunError as err:
        raise fail(err, 1) from None


def _locked(workdir: Path, field: str) -> contextlib.ExitStack:
    """The workdir's run lock, held until the returned stack closes; a workdir that cannot
    be created is a config error, one another run holds is refused."""
    from pipelines.run_lock import WorkdirBusy, WorkdirError, workdir_lock

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(workdir_lock(workdir))
    except WorkdirError as err:
        raise fail(f"{field}: {err}") from None
    except WorkdirBusy as err:
        raise fail(err, 1) from None
    return stack


def _check_source(config, path: Path) -> None:
    """A source without scenes fails now, not in the ingest task after the runner started:
    a local folder by the ingest step's own discovery rules, an S3 prefix or an archive as
    far as a cheap listing shows (the ingest step reads their scenes)."""
    from components.raster import DataError
    from components.sources import check_source
    from pipelines.config import is_local

    try:
        if is_local(config.source) and Path(config.source).is_dir():
            from components.ingest import find_pairs

            find_pairs(Path(config.source), config.data.ingest)
        else:
            check_source(config.source, config.data.ingest.extract_limits())
    except DataError as err:
        from components.prepare import PrepareOptions
        from pipelines.cli.flags import setting_named

        sections = {name: field.annotation for name, field in PrepareOptions.model_fields.items()}
        named = setting_named(err, sections, as_flag=False, prefix="data")
        raise fail(f"{path}: source: {named}") from None


def _check_tracking(uri: str | None, field: str) -> None:
    """A tracking server that does not answer fails now, in seconds, not after MLflow's
    retries (minutes) in the run's first task; ``uri`` is the config's (``field``), unset:
    $MLFLOW_TRACKING_URI. Local stores are the run's to create."""
    import os

    from pipelines.tracking_store import StoreError, check_tracking_server

    where = field if uri else "$MLFLOW_TRACKING_URI"
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return
    try:
        check_tracking_server(uri)
    except StoreError as err:
        raise fail(f"{where}: {err}") from None


def _check_encoder_weights(config, path: Path) -> None:
    """A local run trains here: a configured 'imagenet' encoder weights request this machine
    cannot meet is a config error now, before the data steps (the tune step checks again
    wherever it runs, e.g. on a cluster)."""
    if config.tuning.search_space is None and not config.tuning.train.model_params:
        return  # the built-in space: the tune step adapts it to the machine
    from serving.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()  # the check asks TensorFlow for a GPU
    from components.tune_space import resolve_search_space

    try:
        resolve_search_space(config.tuning.search_space, config.tuning.train)
    except ValueError as err:
        raise fail(f"{path}: {err}") from None


def _run_record(result) -> tuple[dict[str, float], dict[str, str]]:
    """The parent run's metrics and tags: the trivial baseline and the gate's decision,
    which the run result does not carry; empty where the store cannot be read (a summary
    never fails on them)."""
    uri = str(result.tracking_uri)
    database = uri.removeprefix("sqlite:///").partition("?")[0]  # ?timeout=60 and the like
    if uri.startswith("sqlite:///") and not Path(database).is_file():
        return {}, {}  # nothing to read, and opening it would create an empty store
    try:
        from mlflow import MlflowClient

        data = MlflowClient(uri).get_run(result.mlflow_run_id).data
    except Exception:  # an unreachable server: the summary goes without the baseline
        return {}, {}
    return dict(data.metrics), dict(data.tags)


def _summary(result) -> None:
    from components.champion_gate import TAG_DECISION

    promoted = result.champion_version == result.model_version
    metrics, tags = _run_record(result)
    trivial = metrics.get("test_trivial_miou")
    typer.echo("")
    resumed = ", resumed" if result.resumed else ""
    # A repeat run's MLflow name is numbered (cfg-2); resuming goes by the config's.
    named = (f" (config run name {result.config_run_name})"
             if result.config_run_name and result.config_run_name != result.run_name else "")
    typer.echo(f"pipeline run      {result.run_name}{named}  ({result.seconds:.0f} s{resumed})")
    typer.echo(f"MLflow parent run {result.mlflow_run_id}  (tag segpipe.run_name)")
    baseline = "" if trivial is None else f"; trivial baseline {trivial:.4f}"
    typer.echo(f"test mIoU         {result.test_miou:.4f}  (whole test scenes, as served; "
               f"tile by tile {result.test_tile_miou:.4f}{baseline})")
    champion = ("no champion" if result.champion_version == "none"
                else f"champion is version {result.champion_version}")
    typer.echo(f"registered        {result.model_name} version {result.model_version}"
               f" ({'now champion' if promoted else 'challenger'}; {champion})")
    if not promoted and TAG_DECISION in tags:
        typer.echo(f"gate              {tags[TAG_DECISION]}")
    typer.echo(f"log               {result.log_path}")


def demo(workdir: Path = typer.Option(Path("demo-workdir"), help="where everything goes"),
         scenes: int = typer.Option(DEMO_SCENES, min=3, help="sample scenes to generate"),
         size: int = typer.Option(DEMO_SIZE, min=64, help="sample scene edge in pixels"),
         verbose: bool = typer.Option(False, "--verbose", "-v", help="show all task output")
         ) -> None:
    """Sample data -> whole pipeline locally -> champion model, then the next commands."""
    from pipelines.demo import next_commands, prepare_demo, served_model_uri

    workdir = workdir.resolve()
    with _locked(workdir, "--workdir"):  # before anything is written there
        _check_tracking(None, "")  # the demo config leaves the store to the environment
        typer.echo(f"generating {scenes} sample scenes of {size}x{size} px in {workdir}")
        source = prepare_demo(workdir, scenes=scenes, size=size)
        config = _load(DEMO_CONFIG, {"source": str(source), "workdir": str(workdir)})
        result = _run(config, verbose)
    _summary(result)
    model_uri = served_model_uri(result.model_name, result.model_version,
                                 result.champion_version)
    if result.champion_version == "none":  # models:/<name>@champion would not resolve
        typer.echo(f"\nversion {result.model_version} is not champion (the gate's decision "
                   f"above), so the commands below use {model_uri}")
    typer.echo("\nnext, each in a new terminal:")
    for command, what in next_commands(result.tracking_uri, result.model_name, workdir,
                                       model_uri=model_uri):
        typer.echo(f"\n  # {what}\n  {command}")


def run(config: Path = typer.Option(..., "--config", "-c", help="pipeline YAML config"),
        no_cache: bool = typer.Option(False, "--no-cache", help="re-run the data steps too"),
        fresh: bool = typer.Option(False, "--fresh", help="start over instead of resuming an "
                                   "interrupted run of this config"),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="show all task output")
        ) -> None:
    """Run the pipeline locally through Kubeflow's local runner.

    Running a config again after an interruption (a kill, a failure) resumes that run: cached
    data steps, the same MLflow parent run and Optuna study, interrupted trials from their
    last epoch."""
    overrides = {"cache": False} if no_cache else None
    loaded = _load(config, overrides)
    _check_source(loaded, config)
    _check_tracking(loaded.tracking.mlflow_tracking_uri,
                    f"{config}: tracking.mlflow_tracking_uri")
    with _locked(loaded.workdir, f"{config}: workdir"):
        _check_encoder_weights(loaded, config)
        result = _run(loaded, verbose, fresh)
    _summary(result)


_REGISTRY_HELP = ("registry (and path) of the component images, e.g. "
                  "registry.example.org:5000/team (default: $SEGPIPE_IMAGE_REGISTRY, else "
                  "ghcr.io/segpipe)")
_TAG_HELP = "tag of the component images (default: $SEGPIPE_IMAGE_TAG, else segpipe's version)"


def _images(registry: str | None, tag: str | None):
    from pipelines.images import ComponentImages, ImageError

    try:
        return ComponentImages.resolve(registry, tag)
    except ImageError as err:
        raise fail(err) from None


def compile_pipeline(
    out: str = typer.Option("pipeline.yaml", "--out", "-o",
                            help="IR YAML to write (.yaml or .yml)"),
    image_registry: str | None = typer.Option(None, "--image-registry", help=_REGISTRY_HELP),
    image_tag: str | None = typer.Option(None, "--image-tag", help=_TAG_HELP),
    no_cache: bool = typer.Option(False, "--no-cache",
                                  help="no task reuses an earlier run's outputs"),
) -> None:
    """Compile the pipeline to Kubeflow Pipelines IR YAML (upload it in the KFP UI)."""
    from pipelines.cli.paths import check_suffix, check_writable, file_path
    from pipelines.runner import SPEC_SUFFIXES
    from pipelines.runner import compile_pipeline as compile_to

    # before the compile's ten seconds; kfp 2.17 writes JSON for .json, deprecated and to be
    # removed, and refuses other names: segpipe writes the YAML the KFP UI uploads
    path = file_path("--out", out)
    check_writable("--out", path)
    check_suffix("--out", path, "Kubeflow Pipelines IR YAML", SPEC_SUFFIXES)
    images = _images(image_registry, image_tag)
    compile_to(path, images, cache=not no_cache)
    typer.echo(f"wrote {out} (images {images.cpu}, {images.gpu})")


def submit(
    host: str = typer.Option(..., "--host", help="Kubeflow Pipelines API URL"),
    config: Path = typer.Option(..., "--config", "-c", help="pipeline YAML config"),
    experiment: str | None = typer.Option(None, "--experiment",
                                          help="KFP experiment (default: the config's MLflow "
                                               "experiment)"),
    run_name: str | None = typer.Option(None, "--run-name",
                                        help="the run's name in the Kubeflow UI (default: "
                                             "the pipeline's name and the time)"),
    no_cache: bool = typer.Option(False, "--no-cache",
                                  help="re-run the data steps too (as the config's "
                                       "`cache: false`)"),
    image_registry: str | None = typer.Option(None, "--image-registry", help=_REGISTRY_HELP),
    image_tag: str | None = typer.Option(None, "--image-tag", help=_TAG_HELP),
) -> None:
    """Submit a run to a Kubeflow Pipelines API; the token comes from $KFP_TOKEN."""
    import os

    from pipelines.runner import (
        KFP_TOKEN_ENV,
        SubmitError,
        check_api,
        cluster_warnings,
        source_fingerprint_for,
    )
    from pipelines.runner import submit as submit_run

    images = _images(image_registry, image_tag)
    try:
        # before the config: an unreachable API is the likelier mistake
        check_api(host, os.environ.get(KFP_TOKEN_ENV))
    except SubmitError as err:
        raise fail(err, 1) from None
    loaded = _load(config, {"cache": False} if no_cache else None)
    warnings = cluster_warnings(loaded)
    fingerprint = ""
    if loaded.cache:  # the fingerprint only matters to a cached ingest
        fingerprint, unlisted = source_fingerprint_for(loaded)
        warnings += [unlisted] if unlisted else []
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    try:
        submitted = submit_run(host, loaded, experiment=experiment, run_name=run_name,
                               images=images, source_fingerprint=fingerprint)
    except SubmitError as err:
        raise fail(err, 1) from None
    typer.echo(f"submitted run {submitted.run_id}\n{submitted.url}")
