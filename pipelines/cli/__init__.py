"""The ``segpipe`` command. Each group of commands lives in its own module; heavy imports
(TensorFlow, MLflow, kfp) happen inside the commands so ``segpipe --help`` is instant."""

from __future__ import annotations

import os

import typer

from pipelines.cli import data, run, serve
from pipelines.ui.command import ui

# MLflow's artifact-download bars are noise on a console (and in a run's task log).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

app = typer.Typer(
    name="segpipe",
    help="Semantic segmentation of aerial and satellite imagery: prepare data, tune, "
         "evaluate, register, serve and predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.command("sample-data")(data.sample_data)
app.command("prepare")(data.prepare)
app.command("demo")(run.demo)
app.command("run")(run.run)
app.command("compile")(run.compile_pipeline)
app.command("submit")(run.submit)
app.command("serve")(serve.serve)
app.command("predict")(serve.predict)
app.command("ui")(ui)
