"""Run a scene through serving/ exactly as `segpipe predict` does: a ScenePredictor (the
registered model in this process, or a running scoring server) and predict_scene into a
mask GeoTIFF; polygons through serving's write_polygons."""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.ui.settings import UiError
from serving.config import ServingConfig
from serving.polygons import PolygonOptions
from serving.predict import ScenePredictor
from serving.wording import counted

if TYPE_CHECKING:
    from pipelines.ui.registry import VersionSummary

MASK_NAME = "mask.tif"
POLYGONS_NAME = "mask.geojson"


@dataclass(frozen=True)
class PredictOptions:
    tta: bool = False
    overlap: float | None = None  # None: the model's
    endpoint: str | None = None  # None: the model runs in this process
    pixel_size: float | None = None  # metres per pixel of a scene that carries none


#: How the Predict page's warnings name its pixel size field.
PIXEL_SIZE_FIELD = "the Pixel size field below"


def pixel_size_field(value: float | None) -> float | None:
    """The Pixel size (m) field's value as `segpipe predict --pixel-size` takes it
    (serving.decode.check_pixel_size): empty is none, 0 a UiError naming the field."""
    from serving.decode import RequestError, check_pixel_size

    try:
        return check_pixel_size(value, name="Pixel size (m)")
    except RequestError as exc:
        raise UiError(str(exc)) from None


def gate_note(version: VersionSummary) -> str | None:
    """A warning for a version that is not the champion, with the champion gate's decision
    (the Models page shows it too), or that it was champion once; None for the champion or
    a version without one."""
    from pipelines.ui.registry import CHAMPION

    if CHAMPION in version.aliases or not version.decision:
        return None
    if version.decision.startswith("promoted"):  # then replaced, or the alias moved by hand
        why = version.decision.removeprefix("promoted").lstrip(": ")
        return (f"v{version.version} is no longer the champion: the champion gate promoted it"
                f"{f' ({why})' if why else ''}, and another version holds the alias now")
    return (f"v{version.version} is not the champion; the champion gate's decision: "
            f"{version.decision}")


def model_caption(version: VersionSummary, config: ServingConfig, max_pixels: int,
                  endpoint: str | None = None) -> str:
    """The Predict page's line about the model. With ``endpoint`` the mask comes from the
    model the server was started with; Predict refuses a server that says it runs another
    (check_model_server), but an older server does not say, so the sidebar version's
    scores are not shown as the result's: the version lends its classes, colours and
    window."""
    shape = (f"{counted(config.in_channels, 'band')}, {config.num_classes} classes, "
             f"{config.patch_size} px windows. Scenes up to {max_pixels / 1e6:g} megapixels.")
    if endpoint is None:
        return f"{version.label()}: {shape}"
    return (f"Model server {endpoint}: it predicts with the model it was started with, "
            f"which must be v{version.version} (checked before predicting). Classes, "
            f"colours and windows of v{version.version}: {shape}")


def check_model_server(endpoint: str, model_uri: str) -> str | None:
    """The server answers and runs ``model_uri``'s model: a UiError naming both models
    otherwise; a warning line when the server does not say which it runs."""
    from serving.remote import (
        EndpointError,
        OtherModel,
        check_endpoint_model,
        check_endpoint_reachable,
        load_model_card,
    )

    try:
        check_endpoint_reachable(endpoint)
        return check_endpoint_model(endpoint, load_model_card(model_uri))
    except OtherModel as exc:
        raise UiError(f"model server: {exc}; pick the server's model in the sidebar, run "
                      f"in this app, or restart the server on this version") from None
    except EndpointError as exc:
        raise UiError(f"model server: {exc}") from None


def result_source(version: VersionSummary, endpoint: str | None) -> str:
    """Who made a mask, for its caption: the version in this app, or the server."""
    if endpoint is None:
        return version.label()
    return f"the model server {endpoint} (its own model)"


def local_predictor(model_uri: str) -> ScenePredictor:
    """The registered model's own ScenePredictor (loaded and warmed up once per URI by the
    app's resource cache)."""
    import mlflow

    model = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    predictor = getattr(model, "predictor", None)
    if not isinstance(predictor, ScenePredictor):
        raise UiError(f"{model_uri} is not a segpipe segmentation model")
    return predictor


def remote_predictor(endpoint: str, config: ServingConfig, tta: bool,
                     scene: Path | None = None) -> ScenePredictor:
    """Windows of ``scene`` go to ``endpoint`` (which normalizes, and flips them with
    ``tta``, told the scene's nodata when it is not the model's); ``config`` is the
    registered version's, for its classes and window."""
    from serving.remote import endpoint_predict_fn, scene_nodata

    nodata = scene_nodata(scene, config) if scene is not None else None
    return ScenePredictor(endpoint_predict_fn(endpoint, tta=tta, nodata=nodata), config,
                          normalize=False)


def new_result_dir(session_dir: Path) -> Path:
    """A fresh folder for one prediction; the session's previous results are removed, so a
    session holds one result on disk at a time."""
    if session_dir.is_dir():
        for old in session_dir.iterdir():
            if old.name.startswith("result-"):
                shutil.rmtree(old, ignore_errors=True)
    folder = session_dir / f"result-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    return folder


def run_prediction(predictor: ScenePredictor, scene: Path, name: str, out_dir: Path,
                   options: PredictOptions,
                   progress: Callable[[int, int], None] | None = None):
    """predict_scene into ``out_dir/mask.tif``; returns serving's SceneResult. Errors that
    are the scene's or the server's become UiError naming ``name`` or the endpoint."""
    from serving.remote import EndpointError
    from serving.scene import SceneError, predict_scene

    # With an endpoint the server averages the flips of each window (as `segpipe predict`).
    tta_here = options.tta and options.endpoint is None
    try:
        return predict_scene(predictor, scene, out_dir / MASK_NAME, tta=tta_here,
                             overlap=options.overlap, progress=progress,
                             pixel_size=options.pixel_size)
    except SceneError as exc:
        raise UiError(users_name(str(exc), scene, name)) from None
    except EndpointError as exc:  # refused, failed or unreachable (serving/remote.py)
        raise UiError(f"model server: {exc}") from None


def scene_notes(scene: Path, name: str, config: ServingConfig, max_pixels: int,
                pixel_size: float | None = None):
    """serving's notes about a scene before it is predicted (how it is resampled, warnings
    about its resolution, pixel type and values: serving.scene.SceneNotes), naming the
    user's file; a scene it cannot predict is a UiError naming it."""
    from serving.scene import SceneError, SceneNotes, check_scene

    try:
        notes = check_scene(scene, config, max_pixels=max_pixels, pixel_size=pixel_size,
                            pixel_size_option=PIXEL_SIZE_FIELD)
    except SceneError as exc:
        raise UiError(users_name(str(exc), scene, name)) from None
    return SceneNotes(notes.resampling, [users_name(w, scene, name) for w in notes.warnings])


def users_name(message: str, scene: Path, name: str) -> str:
    """``message`` with the app's file (its path, and its bare name as GDAL's detail gives
    it: 'upload.tif, band 1: IReadBlock failed') named as the user knows it. One pass, so a
    user's name that contains the bare name is not replaced again."""
    pattern = rf"{re.escape(str(scene))}|(?<![\w/.-]){re.escape(scene.name)}(?![\w.-])"
    return re.sub(pattern, lambda _: name, message)


def map_unit(mask_path: Path) -> tuple[str, bool]:
    """The unit of a mask's coordinates for the polygon options ("m", "°", "px" without
    georeferencing) and whether it has a CRS to transform from."""
    import rasterio

    from serving.quiet import plain_images_quiet

    with plain_images_quiet(), rasterio.open(mask_path) as src:
        crs, plain = src.crs, src.transform.is_identity
    if crs is None:  # pixels, or a world file's units, which no CRS names
        return ("px" if plain else "units"), False
    if crs.is_geographic:
        return "°", True
    factor = crs.linear_units_factor
    return ("m" if factor[1] == 1 else factor[0]), True


def polygons_caption(mask_path: Path, wgs84: bool) -> str:
    """The line under the polygon download: which coordinates the file is in."""
    if wgs84:
        return "Polygons in longitude/latitude (EPSG:4326)."
    unit, has_crs = map_unit(mask_path)
    if has_crs:
        return "Polygons in the scene's CRS."
    if unit == "px":
        return "Polygons in pixel coordinates: the scene has no georeferencing."
    return "Polygons in the coordinates of the scene's world file: it has no CRS."


def polygons_geojson(mask_path: Path, class_names: list[str], ignore_index: int,
                     options: PolygonOptions | None = None) -> bytes:
    """Class polygons of a mask as GeoJSON bytes (serving/polygons.py), written beside the
    mask once per set of options."""
    from serving.polygons import write_polygons

    options = options or PolygonOptions()
    digest = hashlib.sha256(repr(options).encode()).hexdigest()[:12]
    out = mask_path.with_name(f"{Path(POLYGONS_NAME).stem}-{digest}.geojson")
    if not out.is_file():
        write_polygons(mask_path, out, class_names, ignore_index, options)
    return out.read_bytes()
