"""The ``segpipe`` command. Each group of commands lives in its own module; heavy imports
(TensorFlow, MLflow, kfp) happen inside the commands so ``segpipe --help`` is instant."""

from __future__ import annotations

import os

import typer

from pipelines.cli import data, evaluate, predict, run, serve
from pipelines.cli.help_format import Command, Group
from pipelines.ui.command import ui

# MLflow's artifact-download bars are noise on a console (and in a run's task log).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# rasterio builds an AWS session from the environment whenever it opens or closes a dataset
# outside its (thread-local) Env and $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY are both
# set. A secret set but empty (as shells and CI "clear" one) makes boto3 raise
# PartialCredentialsError, and every local read of this process and its children (the
# app, the server, local-run tasks) failed with a traceback. boto3 and GDAL read an empty
# variable as unset, so dropping it changes nothing else: real credentials still sign S3
# reads (a VRT of private /vsis3/ files), and an S3 source with a missing secret still
# fails naming $AWS_SECRET_ACCESS_KEY. An empty $AWS_NO_SIGN_REQUEST is dropped too: GDAL and
# rasterio read "" as true, so it made every S3 read unsigned (private buckets: 403).
for _variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_NO_SIGN_REQUEST"):
    if os.environ.get(_variable) == "":
        del os.environ[_variable]


class _Segpipe(typer.Typer):
    """The command as a process's entry point (the ``segpipe`` script, ``python -m
    pipelines.cli``) ends through serving/quick_exit.py's ``exit_after``: atexit handlers
    run and output is flushed, but native libraries' static destructors, which can abort a
    finished command (exit 134) while OpenVINO's or TensorFlow's threads still run, do not.
    Tests invoke the click command, not this."""

    def __call__(self, *args, **kwargs):
        from serving import quick_exit

        quick_exit.exit_after(lambda: super(_Segpipe, self).__call__(*args, **kwargs))


app = _Segpipe(
    name="segpipe",
    help="Semantic segmentation of aerial and satellite imagery: prepare data, tune, "
         "evaluate, register, serve and predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=Group,
)


def _show_version(value: bool) -> None:
    if value:
        from pipelines.version import version_text

        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="show segpipe's version (and git commit) and exit"),
) -> None:
    """Semantic segmentation of aerial and satellite imagery: prepare data, tune, evaluate,
    register, serve and predict."""
    from pipelines import warning_lines
    from serving import quick_exit

    warning_lines.install()
    quick_exit.install()


app.command("sample-data", cls=Command)(data.sample_data)
app.command("prepare", cls=Command)(data.prepare)
app.command("demo", cls=Command)(run.demo)
app.command("run", cls=Command)(run.run)
app.command("compile", cls=Command)(run.compile_pipeline)
app.command("submit", cls=Command)(run.submit)
app.command("serve", cls=Command)(serve.serve)
app.command("predict", cls=Command)(predict.predict)
app.command("evaluate", cls=Command)(evaluate.evaluate)
app.command("ui", cls=Command)(ui)
