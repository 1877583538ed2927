"""`segpipe predict FOLDER --out OUT_DIR`: a mask for every scene of a local folder or an
``s3://bucket/prefix/`` (components/scene_folders.py), with the model loaded once.

Before any work: ``--out`` is a folder neither inside a local folder of scenes nor holding
it, and the scenes are listed and counted. A scene whose output already exists whole, made
from this version of the scene (its size and modification time, or its S3 ETag, by the
listing) with this ``--model-uri`` (a GeoTIFF tag of the output: ``SCENE_TAG``), is skipped
(``--overwrite`` predicts it again), so a run stopped midway resumes where it stopped;
the others are checked as a
single scene is (band count, size, a truncated file, ``--nodata``) before the network
loads. A scene that fails a check or its prediction is one line naming it and the problem,
and the others go on; the command then ends with exit code 1. Every output is written to a
temporary file renamed when complete (serving/atomic.py), so those written stay whole."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import typer

from components.scene_folders import FolderScene, SceneFolderOptions
from components.wording import counted, listed
from pipelines.cli.errors import fail, interrupted
from pipelines.cli.paths import check_writable_folder, same_file
from pipelines.cli.predict_run import (
    SECTIONS,
    CheckedScene,
    Predictors,
    check_endpoint,
    check_output,
    check_scene_with,
    load_card,
    predict_with_bar,
)
from pipelines.cli.scenes import Scene
from pipelines.cli.store import use_store

#: The output's GeoTIFF tag naming what it was made from: the scene's listing stamp and the
#: model URI (JSON), compared before a rerun skips it.
SCENE_TAG = "SEGPIPE_SCENE"


@dataclass
class Tally:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)

    def fail(self, scene: FolderScene, problem: object) -> None:
        """One line naming the scene and the problem (GDAL's own may span lines)."""
        text = " ".join(str(problem).split())
        name = str(scene.source)
        self.failed.append(name)
        typer.echo(f"failed {text if text.startswith(name) else f'{name}: {text}'}")


def predict_folder(ctx: typer.Context, source: Path | str, out: Path,
                   options: SceneFolderOptions, *, output: str, nodata: float | None,
                   model_uri: str, endpoint: str | None, tta: bool, overlap: float | None,
                   batch_size: int | None, tracking_uri: str | None, max_pixels: int,
                   pixel_size: float | None = None) -> None:
    """Predict every scene of ``source`` into ``out``/<its relative path>.tif."""
    check_output(output)
    _check_out_folder(source, out)
    found = _find(source, options)
    if found.left_out:
        files = counted(len(found.left_out), "file that is not a scene",
                        "files that are not scenes")
        typer.echo(f"warning: {source}: {files} left out: {listed(found.left_out)}", err=True)
    if not isinstance(source, Path):
        from components.s3_scenes import s3_gdal_env

        ctx.with_resource(s3_gdal_env())  # GDAL's S3 settings, until the command ends
    tally = Tally()
    todo = []
    for scene in found.scenes:
        target = out / scene.output
        if not options.overwrite and _complete(target, output, _made_from(scene, model_uri)):
            tally.skipped += 1
            typer.echo(f"skipped {scene.source}: {target} exists")
        else:
            todo.append(scene)
    if todo:
        try:
            _predict_all(todo, out, tally, output=output, nodata=nodata, model_uri=model_uri,
                         endpoint=endpoint, tta=tta, overlap=overlap, batch_size=batch_size,
                         tracking_uri=tracking_uri, max_pixels=max_pixels,
                         pixel_size=pixel_size)
        except KeyboardInterrupt:
            raise interrupted(f"{tally.done} of {len(todo)} outputs written to {out} this "
                              f"run, each whole; run again to go on") from None
    typer.echo(f"{len(found.scenes)} scenes: {tally.done} predicted, {tally.skipped} skipped "
               f"(output exists), {len(tally.failed)} failed")
    if tally.failed:
        raise typer.Exit(1)


def _predict_all(scenes: list[FolderScene], out: Path, tally: Tally, *, output: str,
                 nodata: float | None, model_uri: str, endpoint: str | None, tta: bool,
                 overlap: float | None, batch_size: int | None, tracking_uri: str | None,
                 max_pixels: int, pixel_size: float | None) -> None:
    """Check every scene against the model's serving config, then load the model once and
    predict those that passed."""
    use_store(model_uri, tracking_uri)
    card = load_card(model_uri)
    checked: list[tuple[FolderScene, CheckedScene]] = []
    for scene in scenes:
        try:
            passed = _check(scene, card.config, nodata, max_pixels, pixel_size)
        except ValueError as exc:  # SceneError, DataError: named, one line
            tally.fail(scene, exc)
            continue
        for line in passed.notes:
            typer.echo(line, err=True)
        checked.append((scene, passed))
    if not checked:
        return
    if endpoint:
        check_endpoint(endpoint, card)
    from rasterio.errors import RasterioError

    from serving.remote import EndpointError

    predictors = Predictors(model_uri, endpoint, tta)
    for number, (scene, passed) in enumerate(checked, 1):
        target = out / scene.output
        try:
            predictor = predictors.for_scene(passed)  # an endpoint's: the scene's nodata read
            result = predict_with_bar(predictor, passed.scene, target,
                                      f"[{number}/{len(checked)}] {passed.scene.name}",
                                      tta=predictors.tta_here, overlap=overlap,
                                      batch_size=batch_size, max_pixels=max_pixels,
                                      output=output, pixel_size=passed.pixel_size,
                                      tags={SCENE_TAG: _made_from(scene, model_uri)})
        except EndpointError as exc:
            tally.fail(scene, exc)
        except (ValueError, RasterioError) as exc:  # SceneError: named, one line
            tally.fail(scene, passed.scene.read_problem(exc))
        except OSError as exc:  # writing the output
            tally.fail(scene, f"cannot write {target}: {exc}")
        else:
            tally.done += 1
            typer.echo(f"wrote {result.mask_path} ({result.width}x{result.height}) from "
                       f"{scene.source}")


def _check(scene: FolderScene, config, nodata: float | None, max_pixels: int,
           pixel_size: float | None) -> CheckedScene:
    """``scene`` checked as a single scene is: an S3 object's first bytes and format first
    (the driver it is read with)."""
    driver = None
    if not isinstance(scene.source, Path):
        from components.s3_scenes import check_s3_scene

        driver = check_s3_scene(scene.source)
    return check_scene_with(Scene(scene.source, driver), config, nodata, max_pixels,
                            pixel_size)


def _find(source: Path | str, options: SceneFolderOptions):
    """The scenes, before any is read: exit 2 naming the problem (``--max-scenes`` by its
    flag), 1 when S3 cannot be listed."""
    from components.raster import DataError
    from components.scene_folders import ListingError, find_scenes
    from pipelines.cli.flags import setting_named

    try:
        return find_scenes(source, options.max_scenes)
    except ListingError as err:
        raise fail(err, 1) from None
    except DataError as err:
        raise fail(setting_named(err, SECTIONS, as_flag=True), 2) from None


def _check_out_folder(source: Path | str, out: Path) -> None:
    """``out`` is (or can be) a folder, neither inside a local ``source`` (a mask written there
    would be found as a scene by the next run) nor holding it (``out/scenes/a.tif`` may be a
    scene of ``scenes/``: its mask would overwrite it), paths resolved (exit 2)."""
    if out.suffix.lower() in (".tif", ".tiff") and not out.is_dir():
        raise fail(f"--out {out} names a file, but {source} is a folder of scenes: give the "
                   f"folder to write their masks into", 2)
    if out.exists() and not out.is_dir():
        raise fail(f"--out {out} is a file, but {source} is a folder of scenes: give the "
                   f"folder to write their masks into", 2)
    if isinstance(source, Path):
        root, target = source.resolve(), out.resolve()
        if same_file(root, target) or target.is_relative_to(root):
            raise fail(f"--out {out} is inside the scenes' folder {source}: its masks would "
                       f"be read as scenes; give a folder outside it", 2)
        if root.is_relative_to(target):
            raise fail(f"--out {out} holds the scenes' folder {source}: a mask could be "
                       f"written over a scene; give a folder outside it", 2)
    check_writable_folder("--out", out)


def _made_from(scene: FolderScene, model_uri: str) -> str:
    return json.dumps({"scene": scene.stamp, "model": model_uri})


def _complete(path: Path, output: str, made_from: str) -> bool:
    """An output written whole before from this scene and model: it opens as a GeoTIFF of
    the kind asked for (one uint8 band for a mask, float32 bands for probabilities), its
    ``SCENE_TAG`` is ``made_from`` (a scene replaced, resized or touched since, or another
    model, is predicted again) and its last pixel reads. Outputs are renamed into place only
    when complete, so this finds a file cut short by a copy, or another kind, not a
    half-written one."""
    import rasterio
    from rasterio.errors import RasterioError
    from rasterio.windows import Window

    if not path.is_file():
        return False
    try:
        with rasterio.open(path) as dst:
            kind = ("uint8",) if output == "mask" else ("float32",) * dst.count
            if (dst.driver, dst.dtypes, dst.tags().get(SCENE_TAG)) != ("GTiff", kind,
                                                                       made_from):
                return False
            dst.read(window=Window(dst.width - 1, dst.height - 1, 1, 1))
            return True
    except RasterioError:
        return False
