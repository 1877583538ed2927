"""The steps `segpipe predict` takes for every scene, whether it predicts one or a folder of
them (pipelines/cli/predict_folder.py): the model's serving config read without its network,
a scene checked against it (with ``--nodata``), the server checked once, the predictor built
once, and one scene predicted under a progress bar."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from components.scene_folders import SceneFolderOptions
from pipelines.cli.errors import fail
from pipelines.cli.scenes import Scene
from serving.quiet import plain_images_quiet

OUTPUTS = ("mask", "probabilities")
#: The option models `segpipe predict`'s flags come from (a folder's, for a folder of scenes).
SECTIONS = {"folder": SceneFolderOptions}


def check_output(output: str) -> None:
    """``--output`` names an output kind (exit code 2 otherwise)."""
    if output not in OUTPUTS:
        raise fail(f"--output {output!r}: expected one of {', '.join(OUTPUTS)}", 2)


def pixel_size_flag(value: float | None) -> float | None:
    """``--pixel-size`` checked as the server checks its param (serving.decode)."""
    from serving.decode import RequestError, check_pixel_size

    try:
        return check_pixel_size(value, name="--pixel-size")
    except RequestError as exc:
        raise typer.BadParameter(str(exc).removeprefix("--pixel-size ")) from None


def load_card(model_uri: str):
    """The model's card (serving config and identity), from two small files: exit 1 when it
    is not a segpipe model or cannot be read."""
    from serving.remote import ModelCardError, load_model_card

    try:
        return load_model_card(model_uri)
    except ModelCardError as exc:
        raise fail(str(exc), 1) from None
    except Exception as exc:  # MLflow, file and key errors of a model that is not segpipe's
        raise fail(f"model {model_uri}: cannot read its serving config "
                   f"({type(exc).__name__}: {str(exc)[:200]}); is it a segpipe model?",
                   1) from None


@dataclass(frozen=True)
class CheckedScene:
    """A scene that passed the checks: the config it is predicted with (``--nodata`` in
    it), the nodata it is read with (None: the model's, unless the scene declares its own),
    the lines to print about it first (warnings, then how it is resampled), and
    ``--pixel-size`` (for a scene that carries none)."""

    scene: Scene
    config: object  # ServingConfig
    nodata: float | None
    notes: list[str]
    pixel_size: float | None = None


def check_scene_with(scene: Scene, config, nodata: float | None, max_pixels: int,
                     pixel_size: float | None = None) -> CheckedScene:
    """``scene`` checked against the model's serving ``config`` alone, before the network
    loads (serving/scene.py check_scene), with ``--nodata`` and ``--pixel-size`` applied; a
    SceneError naming the scene when it cannot be predicted."""
    from serving.scene import check_scene

    config, nodata_warning, scene_value = _with_nodata(config, scene, nodata)
    notes = check_scene(scene.path, config, max_pixels=max_pixels, driver=scene.driver,
                        pixel_size=pixel_size)
    lines = [f"warning: {w}" for w in [nodata_warning] * bool(nodata_warning) + notes.warnings]
    if notes.resampling:
        lines.append(f"{scene.path}: {notes.resampling}")
    return CheckedScene(scene, config, scene_value, lines, pixel_size)


def _with_nodata(config, scene: Scene, nodata: float | None):
    """``config`` with ``--nodata`` as its nodata (the value that marks no data in a scene
    that declares none), and a warning when the scene declares another of its own (which
    wins, as in training and on the server); and the nodata the scene is read with (None:
    the model's, unless the scene declares its own). A SceneError when the scene does not
    open."""
    if nodata is None:
        return config, None, None
    from serving.bands import band_nodata, nodata_text, same_nodata
    from serving.remote import wire_nodata
    from serving.scene import open_scene

    with plain_images_quiet(), open_scene(scene.path, scene.driver) as src:
        declared = band_nodata(src)
    warning = None
    if declared is not None and (isinstance(declared, tuple)
                                 or not same_nodata(declared, nodata)):
        warning = (f"{scene.path} declares nodata {nodata_text(declared)}, which wins: "
                   f"--nodata {nodata:g} applies only to a scene that declares none")
    return (config.model_copy(update={"nodata": nodata}), warning,
            nodata if declared is None else wire_nodata(declared))


def check_endpoint(endpoint: str, card) -> None:
    """The server answers (exit code 1 otherwise) and runs ``card``'s model (exit code 2
    otherwise: the options name two models); a warning when it does not say which."""
    from serving.remote import (
        EndpointError,
        OtherModel,
        check_endpoint_model,
        check_endpoint_reachable,
    )

    try:
        check_endpoint_reachable(endpoint)
        warning = check_endpoint_model(endpoint, card)
    except OtherModel as exc:
        raise fail(f"{exc}; start the server on {card.uri}, or predict with --model-uri "
                   f"{exc.served}", 2) from None
    except EndpointError as exc:
        raise fail(str(exc), 1) from None
    if warning:
        typer.echo(f"warning: {warning}", err=True)


class Predictors:
    """The predictor of each checked scene: the model's network, loaded once (made only
    after every scene is checked: loading takes seconds), or windows sent to ``endpoint``,
    told each scene's nodata."""

    def __init__(self, model_uri: str, endpoint: str | None, tta: bool):
        from serving.quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
        self.endpoint, self.tta = endpoint, tta
        self.loaded = None
        if not endpoint:
            from serving.pyfunc import load_predictor

            self.loaded = load_predictor(model_uri)

    @property
    def tta_here(self) -> bool:
        """Whether flips are averaged here: the server averages those of each window."""
        return self.tta and not self.endpoint

    def for_scene(self, checked: CheckedScene):
        from serving.predict import ScenePredictor

        if self.loaded is not None:
            return ScenePredictor(self.loaded.predict_fn, checked.config, self.loaded.normalize)
        from serving.remote import endpoint_predict_fn, scene_nodata

        scene = checked.scene
        value = (scene_nodata(scene.path, checked.config, scene.driver)
                 if checked.nodata is None else checked.nodata)
        return ScenePredictor(endpoint_predict_fn(self.endpoint, tta=self.tta, nodata=value),
                              checked.config, normalize=False)


def predict_with_bar(predictor, scene: Scene, out: Path, description: str, **options):
    """serving/scene.py predict_scene under a transient progress bar; its errors are the
    caller's to report."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from serving.scene import predict_scene

    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>5.1f}%"), TimeRemainingColumn())
    # on stderr, and only on a terminal: a transient bar elsewhere leaves an empty line
    console = Console(stderr=True)
    with Progress(*columns, transient=True, console=console,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return predict_scene(predictor, scene.path, out, progress=progress,
                             driver=scene.driver, **options)
