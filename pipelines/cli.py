"""The ``segpipe`` command. Each group of commands lives in its own module; heavy imports
(TensorFlow, MLflow, kfp) happen inside the commands so ``segpipe --help`` is instant."""

from __future__ import annotations

import typer

from pipelines import cli_data, cli_pipeline, cli_serving
from pipelines.ui.command import ui

app = typer.Typer(
    name="segpipe",
    help="Semantic segmentation of aerial and satellite imagery: prepare data, tune, "
         "evaluate, register, serve and predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.command("sample-data")(cli_data.sample_data)
app.command("prepare")(cli_data.prepare)
app.command("demo")(cli_pipeline.demo)
app.command("run")(cli_pipeline.run)
app.command("compile")(cli_pipeline.compile_pipeline)
app.command("submit")(cli_pipeline.submit)
app.command("serve")(cli_serving.serve)
app.command("predict")(cli_serving.predict)
app.command("ui")(ui)

if __name__ == "__main__":
    app()
