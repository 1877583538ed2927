"""`segpipe predict`."""

from __future__ import annotations

from pathlib import Path

import typer

from components.scene_folders import SceneFolderOptions
from pipelines.cli.errors import fail
from pipelines.cli.flags import flag_names, flagged_problems, with_model_flags
from pipelines.cli.paths import check_suffix, check_writable, same_file
from pipelines.cli.predict_run import (
    SECTIONS,
    Predictors,
    check_endpoint,
    check_output,
    check_scene_with,
    load_card,
    pixel_size_flag,
    predict_with_bar,
)
from pipelines.cli.scenes import Scene, check_scene_source, is_scene_folder, scene_argument
from pipelines.cli.store import DEFAULT_MODEL_URI, use_store
from serving import server
from serving.config import MAX_OVERLAP
from serving.decode import PIXEL_SIZE_MEANING
from serving.quiet import plain_images_quiet
from serving.scene import MAX_SCENE_PIXELS

# What predict writes, by the names the files may have.
MASK_SUFFIXES = (".tif", ".tiff")
POLYGON_SUFFIXES = (".geojson", ".json")


def _check_outputs(input: Path | None, out: Path, polygons: Path | None, output: str) -> None:
    """Refuse outputs that would overwrite the scene (``input``, when local) or each other,
    are named for another format than the one written, or cannot be written."""
    check_output(output)
    if input is not None and same_file(out, input):
        raise fail(f"--out {out} is the input scene {input}: the {output} would overwrite it",
                   2)
    if polygons is not None and output != "mask":
        raise fail("--polygons are made from the mask: predict with --output mask (the "
                   "default)", 2)
    if polygons is not None:
        if input is not None and same_file(polygons, input):
            raise fail(f"--polygons {polygons} is the input scene {input}: the polygons would "
                  f"overwrite it", 2)
        if same_file(polygons, out):
            raise fail(f"--polygons {polygons} is the mask --out {out}: give them different "
                  f"names", 2)
    check_writable("--out", out)
    check_suffix("--out", out, f"a GeoTIFF {output}", MASK_SUFFIXES)
    if polygons is not None:
        check_writable("--polygons", polygons)
        check_suffix("--polygons", polygons, "GeoJSON", POLYGON_SUFFIXES)


def _polygon_options(polygons: Path | None, classes: list[str] | None,
                     min_area: float | None, simplify: float | None, crs: str | None):
    """The polygon options; any of them without --polygons is refused (exit code 2)."""
    from serving.polygons import PolygonOptions

    given = [flag for flag, value in (("--polygon-classes", classes), ("--min-area", min_area),
                                      ("--simplify", simplify), ("--polygons-crs", crs))
             if value is not None]
    if given and polygons is None:
        verb = "shapes" if len(given) == 1 else "shape"
        raise fail(f"{', '.join(given)} {verb} the polygons: add --polygons FILE.geojson", 2)
    names = tuple(n.strip() for item in classes or () for n in item.split(",") if n.strip())
    # Only what was given: the defaults and their checks are PolygonOptions' and
    # check_options' (a negative value is refused there, exit code 2).
    chosen = {"classes": names or None, "min_area": min_area, "simplify": simplify,
              "crs": crs}
    return PolygonOptions(**{k: v for k, v in chosen.items() if v is not None})


def _check_polygon_options(options, class_names: list[str], scene: Scene) -> None:
    """Classes the model has, a CRS that exists and a scene CRS to transform from (exit
    code 2 otherwise), before any work."""
    from serving.polygons import PolygonError, check_options
    from serving.scene import open_scene

    # Quiet before the open, which is what warns; the resolution notes say it instead.
    with plain_images_quiet(), open_scene(scene.path, scene.driver) as src:
        crs = src.crs
    try:
        check_options(options, class_names, crs)
    except PolygonError as exc:
        raise fail(str(exc), 2) from None


@with_model_flags(SECTIONS)
def predict(
    ctx: typer.Context,
    input: str = typer.Argument(..., callback=scene_argument,
                                help="scene: a file of any raster format GDAL reads (GeoTIFF "
                                     "of any size, VRT, JPEG 2000, PNG, JPEG, ...), or an "
                                     "s3://bucket/key object (GeoTIFF, PNG, JPEG, JPEG 2000, "
                                     "BMP), read window by window; or a folder or an "
                                     "s3://bucket/prefix/ of scenes, searched recursively"),
    out: Path = typer.Option(..., "--out",
                             help="mask (or probabilities) to write: a GeoTIFF, named .tif "
                                  "or .tiff; for a folder or prefix, the folder to write "
                                  "them into (OUT/sub/scene.tif for INPUT/sub/scene.png)"),
    output: str = typer.Option(
        "mask", "--output", metavar="mask|probabilities",
        help="mask: uint8 class ids with a colour table; probabilities: one float32 band per "
             "class (band descriptions: the class names), NaN where the scene has no data"),
    nodata: float | None = typer.Option(
        None, "--nodata",
        help="pixel value that marks no data in a scene that declares none (e.g. 0 for a "
             "mosaic merged with 0 fill); default: the model's training nodata. A scene's "
             "own nodata tag wins"),
    pixel_size: float | None = typer.Option(
        None, "--pixel-size", callback=pixel_size_flag,
        help=f"{PIXEL_SIZE_MEANING[0].upper()}{PIXEL_SIZE_MEANING[1:]} (the server's param "
             f"pixel_size); for a folder, of each scene that carries none"),
    model_uri: str = typer.Option(DEFAULT_MODEL_URI, "--model-uri",
                                  help="registered model, runs:/ URI or local model folder"),
    endpoint: str | None = typer.Option(
        None, "--endpoint",
        help="model server URL (`segpipe serve`); windows are sent there and blended here. "
             "The server must run the --model-uri model (asked with GET /model before any "
             "window; another model is refused), which lends its classes, window size and "
             "resolution"),
    tta: bool = typer.Option(False, "--tta", help="average the 8 flips/rotations"),
    overlap: float | None = typer.Option(None, "--overlap", min=0.0, max=MAX_OVERLAP,
                                         help="window overlap (default: the model's)"),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1),
    polygons: Path | None = typer.Option(
        None, "--polygons", help="also write class polygons: GeoJSON, named .geojson or "
                                 ".json, in the scene's CRS unless --polygons-crs"),
    polygon_classes: list[str] | None = typer.Option(
        None, "--polygon-classes", metavar="<name>",
        help="classes to polygonize, by name (repeat it or separate by commas; default: "
             "every class not named background)"),
    min_area: float | None = typer.Option(
        None, "--min-area",
        help="leave out polygons of a smaller area, in the scene CRS's units squared (m² "
             "in UTM; pixels without georeferencing), measured after --simplify too; "
             "default: none left out"),
    simplify: float | None = typer.Option(
        None, "--simplify",
        help="simplify polygon outlines within this tolerance, in the scene CRS's units "
             "(m in UTM); default: the pixel outlines"),
    polygons_crs: str | None = typer.Option(
        None, "--polygons-crs",
        help="write the polygons in this CRS, e.g. EPSG:4326 (RFC 7946 GeoJSON for web maps)"),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri",
                                            help="MLflow tracking URI (default: environment)"),
    max_pixels: int = typer.Option(
        MAX_SCENE_PIXELS, "--max-pixels", min=1,
        help="largest scene to predict, checked from its header before any pixel is read"),
    *,
    overrides: dict,
) -> None:
    """Predict a georeferenced mask for a scene of any size, a file or an S3 object, window
    by window; or one mask per scene of a folder or an s3://bucket/prefix/, with one model."""
    from serving.remote import EndpointError

    folder_options = _folder_options(overrides)
    if is_scene_folder(input):
        from pipelines.cli.predict_folder import predict_folder

        if polygons is not None:
            raise fail("--polygons names one file: it is made for one scene, not for a folder "
                       "or an s3:// prefix of scenes; predict the scene alone for its "
                       "polygons", 2)
        _polygon_options(None, polygon_classes, min_area, simplify, polygons_crs)
        _check_endpoint_url(endpoint)
        predict_folder(ctx, input, out, folder_options, output=output, nodata=nodata,
                       model_uri=model_uri, endpoint=endpoint, tta=tta, overlap=overlap,
                       batch_size=batch_size, tracking_uri=tracking_uri,
                       max_pixels=max_pixels, pixel_size=pixel_size)
        return
    if overrides:
        flags = ", ".join(flag_names(SECTIONS)[("folder", name)]
                          for name in overrides["folder"])
        raise fail(f"{flags}: for a folder or an s3:// prefix of scenes, not one scene", 2)
    _check_outputs(input if isinstance(input, Path) else None, out, polygons, output)
    polygon_options = _polygon_options(polygons, polygon_classes, min_area, simplify,
                                       polygons_crs)
    _check_endpoint_url(endpoint)
    scene = check_scene_source(input)  # an S3 object is asked for before the store and model
    ctx.with_resource(scene.env())  # GDAL's S3 settings, until the command ends
    use_store(model_uri, tracking_uri)
    from serving.scene import SceneError

    # The scene is checked against the model's serving config alone (two small files),
    # before the network loads or a window goes to the server.
    card = load_card(model_uri)
    try:
        checked = check_scene_with(scene, card.config, nodata, max_pixels, pixel_size)
    except SceneError as exc:
        raise scene.read_failure(exc) from None
    if polygons is not None:
        _check_polygon_options(polygon_options, card.config.class_names, scene)
    if endpoint:
        check_endpoint(endpoint, card)
    for line in checked.notes:
        typer.echo(line, err=True)
    predictors = Predictors(model_uri, endpoint, tta)
    try:
        result = predict_with_bar(predictors.for_scene(checked), scene, out,
                                  f"predicting {scene.name}", tta=predictors.tta_here,
                                  overlap=overlap, batch_size=batch_size,
                                  polygons_path=polygons, max_pixels=max_pixels,
                                  polygon_options=polygon_options, output=output,
                                  pixel_size=checked.pixel_size)
    except SceneError as exc:
        raise scene.read_failure(exc) from None
    except EndpointError as exc:
        raise fail(str(exc), 1) from None
    except OSError as exc:  # writing the mask or the polygons
        raise fail(f"cannot write the output: {exc}", 1) from None
    typer.echo(f"wrote {result.mask_path} ({result.width}x{result.height})")
    if result.polygons_path:
        per_class = ", ".join(f"{name} {count}" for name, count in
                              result.polygon_counts.items())
        typer.echo(f"wrote {result.polygons_path} ({result.polygon_count} polygons: "
                   f"{per_class or 'no class asked for'})")
    for name, count in result.class_pixels.items():
        typer.echo(f"  {name}: {count} px")


def _check_endpoint_url(endpoint: str | None) -> None:
    """An --endpoint that is http(s)://host:port, before any work (exit code 2)."""
    from serving.urls import UrlError, check_http_url

    if endpoint:
        try:
            check_http_url(endpoint, "endpoint", f"http://127.0.0.1:{server.DEFAULT_PORT}")
        except UrlError as exc:
            raise fail(str(exc), 2) from None


def _folder_options(overrides: dict) -> SceneFolderOptions:
    """The folder flags validated by their model (exit 2 naming each bad flag)."""
    from pydantic import ValidationError

    try:
        return SceneFolderOptions.model_validate(overrides.get("folder", {}))
    except ValidationError as err:
        raise fail("; ".join(flagged_problems(err, SECTIONS, "options", section="folder")),
                   2) from None
